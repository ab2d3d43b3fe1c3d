package reliability

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/harness"
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

// warm sends each of the n hot names once over UDP.
func warm(t testing.TB, s *harness.Server, n int) {
	t.Helper()
	r := Load{Net: "udp", Addr: s.DNS, Workers: 4, Count: n, Query: hotNames(n)}.Run(context.Background())
	if st := r.Stats(); st.Failed > 0 {
		t.Fatalf("warm-up: %v", st)
	}
}

// checkSettled fails the test when the server's goroutines or fds stay above base.
func checkSettled(t testing.TB, s *harness.Server, base Sample, slack int) Sample {
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
