package reliability

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
)

// TestSoak runs the product chain for DNSCACHE_SOAK_DURATION (5m by default) at about half
// of its measured capacity, with mixed hits and misses over UDP and the socket. It prints
// RSS, goroutines and fds every 10 s and the p99 drift from the first minute to the last.
// It runs only under DNSCACHE_SOAK (make soak); in `go test` a 10 s version checks the
// machinery.
func TestSoak(t *testing.T) {
	kit.CheckFDs(t)
	d := scale(10*time.Second, 5*time.Minute)
	if v := os.Getenv("DNSCACHE_SOAK_DURATION"); v != "" && soak() {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("DNSCACHE_SOAK_DURATION: %v", err)
		}
	}
	every := scale(2*time.Second, 10*time.Second)
	minute := min(time.Minute, d/3)

	ups := startLabs(t, 3, lab.Config{Latency: lab.Latency{Dist: lab.LogNormal, Median: 2 * time.Millisecond, Sigma: 0.5}})
	s := startChain(t, ups, "success 100000\n        prefetch 2 10s", "")
	// Hot names with a 20 s TTL: the sweeper must refresh them before they expire.
	const hot = 1000
	hotName := func(i int) (string, uint16) { return fmt.Sprintf("ttl20-hot%d.example.", i%hot), dns.TypeA }
	if st := runLoad(context.Background(), kit.Load{Network: "udp", Addr: s.DNS, Conns: 4, Count: hot, Next: next(hotName)}).Stats(); st.Failed > 0 {
		t.Fatalf("warm-up: %v", st)
	}
	query := func() func(int) (string, uint16) {
		miss := misses()
		return func(i int) (string, uint16) {
			if i%5 == 0 { // one query in five is a miss
				return miss(i)
			}
			return hotName(i)
		}
	}

	// Capacity: closed-loop load over both transports for a few seconds.
	capUDP, capSock := both(s, kit.Load{Conns: 16, Duration: scale(2*time.Second, 5*time.Second), Next: next(query())})
	capacity := capUDP.Stats().QPS + capSock.Stats().QPS
	rate := int(capacity / 2)
	t.Logf("capacity (closed loop, 16+16 clients): %.0f qps; soak at %d qps for %v", capacity, rate, d)

	base := Measure(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	var (
		samples []Sample
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			m := Measure(t, s)
			m.At = time.Since(start)
			samples = append(samples, m)
			t.Logf("soak %v", m)
		}
	}()
	udp, sock := both(s, kit.Load{Conns: 16, Rate: float64(rate) / 2, Duration: d, Next: next(query())})
	cancel()
	wg.Wait()

	for name, r := range map[string]*kit.Result{"udp": udp, "unix": sock} {
		all, first, last := r.Stats(), r.Window(0, minute), r.Window(d-minute, d)
		t.Logf("soak %s: %v", name, all)
		t.Logf("soak %s: first %v: %v", name, minute, first)
		t.Logf("soak %s: last %v:  %v", name, minute, last)
		t.Logf("soak %s: p99 drift first to last %v: %v -> %v (%.2fx)", name, minute, first.P99, last.P99, float64(last.P99)/float64(max(first.P99, 1)))
		if all.Failed > 0 {
			t.Errorf("soak %s: %d of %d queries failed: %v", name, all.Failed, all.Sent, all.Fails)
		}
	}
	if len(samples) > 0 {
		lo, hi := samples[0], samples[0]
		for _, m := range samples {
			if m.RSS < lo.RSS {
				lo = m
			}
			if m.RSS > hi.RSS {
				hi = m
			}
		}
		t.Logf("soak rss: min %.1f MiB, max %.1f MiB; hits %v, misses %v, prefetches %v",
			mib(lo.RSS), mib(hi.RSS), s.Metric(t, "coredns_warmcache_hits_total", nil),
			s.Metric(t, "coredns_warmcache_misses_total", nil), s.Metric(t, "coredns_warmcache_prefetch_total", nil))
	}
	checkSettled(t, s, base, 10)
	s.Stop(t)
}
