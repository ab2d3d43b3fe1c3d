package reliability

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
)

// TestTotalOutage takes all three upstreams down while clients resolve hot names (cached
// with a 1 s TTL, so expired during the outage) and new names over UDP and the socket.
// With serve_stale every hot name must be answered during the outage; once the upstreams
// are back every new name must resolve again. It reports how long racetls takes to use
// each recovered upstream.
func TestTotalOutage(t *testing.T) {
	ups := startLabs(t, 3, lab.Config{Latency: lab.Latency{Dist: lab.Fixed, Median: 2 * time.Millisecond}})
	s := startChain(t, ups, "success 10000\n        serve_stale 1h", "race all")
	base := Measure(t, s)
	const hot = 100
	stale := func(i int) (string, uint16) { return fmt.Sprintf("ttl1-hot%d.example.", i%hot), dns.TypeA }
	w := runLoad(context.Background(), kit.Load{Network: "udp", Addr: s.DNS, Conns: 4, Count: hot, Next: next(stale)})
	if st := w.Stats(); st.Failed > 0 {
		t.Fatalf("warm-up: %v", st)
	}
	time.Sleep(1500 * time.Millisecond) // every hot entry is now expired

	outage := scale(3*time.Second, 10*time.Second)
	lead, tail := time.Second, 3*time.Second
	run := lead + outage + tail
	var (
		wg                          sync.WaitGroup
		hotUDP, hotSock, newU, newS *kit.Result
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		hotUDP, hotSock = both(s, kit.Load{Conns: 2, Rate: 100, Duration: run, Next: next(stale)})
	}()
	go func() {
		defer wg.Done()
		newU, newS = both(s, kit.Load{Conns: 4, Rate: 100, Duration: run, Next: next(misses()), Timeout: time.Second, Retries: -1})
	}()

	time.Sleep(lead)
	down := time.Now()
	for _, u := range ups {
		u.Down()
	}
	time.Sleep(outage)
	queries := make([]int64, len(ups))
	for i, u := range ups {
		queries[i] = u.Stats().Queries
		if err := u.Up(); err != nil {
			t.Fatal(err)
		}
	}
	up := time.Now()
	// Time until each upstream answers a query again.
	reuse := make([]time.Duration, len(ups))
	for i, u := range ups {
		for u.Stats().Queries == queries[i] && time.Since(up) < tail {
			time.Sleep(5 * time.Millisecond)
		}
		reuse[i] = time.Since(up)
	}
	wg.Wait()

	for name, r := range map[string]*kit.Result{"hot/udp": hotUDP, "hot/unix": hotSock} {
		st := r.Between(down, up)
		t.Logf("outage %v, %s (stale): %v", outage, name, st)
		if st.Failed > 0 || st.Sent == 0 {
			t.Errorf("%s: %d of %d expired hot names not served stale during the outage: %v", name, st.Failed, st.Sent, st.Fails)
		}
	}
	for name, r := range map[string]*kit.Result{"new/udp": newU, "new/unix": newS} {
		t.Logf("outage %v, %s during: %v", outage, name, r.Between(down, up))
		ok, _ := r.FirstOK(up)
		t.Logf("outage %v, %s: first new name resolved %v after the upstreams came back", outage, name, ok.Sub(up).Round(time.Millisecond))
		settled := up.Add(tail / 2)
		if st := r.Between(settled, up.Add(tail)); st.Failed > 0 || st.Sent == 0 {
			t.Errorf("%s: %d of %d new names failed %v after the upstreams came back: %v", name, st.Failed, st.Sent, tail/2, st.Fails)
		}
	}
	for i, d := range reuse {
		t.Logf("upstream %d used again %v after it came back", i, d.Round(time.Millisecond))
		if d >= tail {
			t.Errorf("upstream %d not used again within %v of coming back", i, tail)
		}
	}
	t.Logf("stale served (coredns_warmcache_stale_total): %v", s.Metric(t, "coredns_warmcache_stale_total", nil))
	checkSettled(t, s, base, 10)
}
