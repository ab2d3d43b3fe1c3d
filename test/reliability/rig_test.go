package reliability

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
)

// soak reports whether the long variants run (DNSCACHE_SOAK=1, scripts/soak.sh).
func soak() bool { return os.Getenv("DNSCACHE_SOAK") != "" }

// scale returns short in `go test` and long under DNSCACHE_SOAK.
func scale[T any](short, long T) T {
	if soak() {
		return long
	}
	return short
}

// startLabs starts n lab upstreams sharing one CA; t.Cleanup closes them.
func startLabs(t testing.TB, n int, cfg lab.Config) []*lab.Upstream {
	t.Helper()
	if cfg.CA == nil {
		ca, err := lab.NewCA()
		if err != nil {
			t.Fatal(err)
		}
		cfg.CA = ca
	}
	ups := make([]*lab.Upstream, n)
	for i := range ups {
		c := cfg
		c.Seed = cfg.Seed + uint64(i)
		u, err := lab.Start(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		ups[i] = u
	}
	return ups
}

// udpAddrs lists the upstreams' plain DNS addresses.
func udpAddrs(ups []*lab.Upstream) string {
	var s []string
	for _, u := range ups {
		s = append(s, u.UDPAddr())
	}
	return strings.Join(s, " ")
}

// stockCorefile is CoreDNS's own chain (cache, forward) in front of the upstreams.
func stockCorefile(ups []*lab.Upstream) string {
	return fmt.Sprintf(`.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    cache 300
    forward . %s {
        expire 1s
    }
}
`, udpAddrs(ups))
}

// hotNames returns the i-th query of a set of n names (cache hits once warm).
func hotNames(n int) func(i int) (string, uint16) {
	return func(i int) (string, uint16) { return fmt.Sprintf("hot%d.example.", i%n), dns.TypeA }
}

// runLoad runs l as the suite's clients do: with every query kept, dialling again when the
// server is not there yet, and by default asking "q<i>.example." A. A negative Retries means
// none (both leaves it alone). It panics on an invalid load.
func runLoad(ctx context.Context, l kit.Load) *kit.Result {
	l.Keep, l.Redial = true, true
	l.Retries = max(l.Retries, 0)
	if l.Next == nil {
		l.Next = next(func(i int) (string, uint16) { return fmt.Sprintf("q%d.example.", i), dns.TypeA })
	}
	r, err := l.Run(ctx)
	if err != nil {
		panic(err)
	}
	return r
}

// next adapts a function of a query's name and type to kit.Load's Next.
func next(q func(i int) (string, uint16)) func(int) kit.Query {
	return func(i int) kit.Query {
		name, qtype := q(i)
		return kit.Query{Name: name, Type: qtype}
	}
}

// warm sends each of the n hot names once over UDP.
func warm(t testing.TB, s *kit.CoreDNS, n int) {
	t.Helper()
	r := runLoad(context.Background(), kit.Load{Network: "udp", Addr: s.DNS, Conns: 4, Count: n, Next: next(hotNames(n))})
	if st := r.Stats(); st.Failed > 0 {
		t.Fatalf("warm-up: %v", st)
	}
}

// checkSettled fails the test when the server's goroutines or fds stay above base.
func checkSettled(t testing.TB, s *kit.CoreDNS, base Sample, slack int) Sample {
	t.Helper()
	after := Settle(t, s, base, slack, 15*time.Second)
	t.Logf("server before: %v", base)
	t.Logf("server after:  %v", after)
	if after.Goroutines > base.Goroutines+slack {
		t.Errorf("goroutines grew from %d to %d", base.Goroutines, after.Goroutines)
	}
	if after.FDs > base.FDs+slack {
		t.Errorf("fds grew from %d to %d", base.FDs, after.FDs)
	}
	return after
}
