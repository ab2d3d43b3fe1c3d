package reliability

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
)

// dnscacheCorefile is the product chain: the Unix socket, warmcache and racetls over DoT to
// the lab upstreams. cache and race are warmcache's and racetls's extra option lines.
func dnscacheCorefile(ups []*lab.Upstream, cache, race string) string {
	var to []string
	for _, u := range ups {
		to = append(to, "tls://"+u.TLSAddr())
	}
	return fmt.Sprintf(`.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    unixsock {{.Sock}}
    warmcache {
        %s
    }
    racetls . %s {
        tls {{.CA}}
        tls_servername %s
        %s
    }
}
`, cache, strings.Join(to, " "), lab.DefaultServerName, race)
}

// startChain writes the labs' CA into a prepared server's directory and runs the product
// chain on it.
func startChain(t testing.TB, ups []*lab.Upstream, cache, race string) *kit.CoreDNS {
	t.Helper()
	s := kit.Prepare(t)
	if err := ups[0].CA().WriteFiles(s.Dir); err != nil {
		t.Fatal(err)
	}
	s.Run(t, dnscacheCorefile(ups, cache, race))
	return s
}

var runSeq atomic.Int64

// misses returns a query function whose names are new to the cache on every call.
func misses() func(i int) (string, uint16) {
	run := runSeq.Add(1)
	return func(i int) (string, uint16) { return fmt.Sprintf("m%d-%d.example.", run, i), dns.TypeA }
}

// both runs the same load over UDP and the socket at once and returns the two results.
func both(s *kit.CoreDNS, l kit.Load) (udp, sock *kit.Result) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		u := l
		u.Network, u.Addr = "udp", s.DNS
		if u.Retries == 0 {
			u.Timeout, u.Retries = 2500*time.Millisecond, 1 // a stub resolver's retry
		}
		udp = runLoad(context.Background(), u)
	}()
	go func() {
		defer wg.Done()
		u := l
		u.Network, u.Addr = "unix", s.Sock
		if u.Timeout == 0 {
			u.Timeout = 5 * time.Second
		}
		sock = runLoad(context.Background(), u)
	}()
	wg.Wait()
	return udp, sock
}
