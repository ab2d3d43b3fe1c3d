package warmcache

import (
	"context"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// tick advances the fake clock by d and runs one sweep to completion.
func tick(c *WarmCache, clk *clock, d time.Duration) int {
	clk.Advance(d)
	n := c.sweep(clk.Now())
	c.wg.Wait()
	return n
}

func TestDefaultsKeepPolledNameWarm(t *testing.T) {
	// With the default settings, names polled every few seconds never miss after the
	// first query, for any TTL down to the minimum TTL.
	for _, tc := range []struct {
		ttl   uint32
		every int // seconds between queries
	}{{5, 2}, {5, 4}, {10, 3}, {30, 5}, {300, 5}} {
		u := startLab(t, lab.Config{TTL: tc.ttl})
		c, clk := newCache(t, "warmcache", u)
		w := &recorder{}
		name := "poll.example.org."
		misses := testutil.ToFloat64(missesCount.WithLabelValues(""))
		query(t, c, w, name, dns.TypeA)
		// Sweeps run half-way between queries: an entry that expires at a query was due
		// to be refreshed by an earlier sweep.
		const secs = 120
		for s := 1; s <= secs; s++ {
			tick(c, clk, time.Second/2)
			clk.Advance(time.Second / 2)
			if s%tc.every == 0 {
				query(t, c, w, name, dns.TypeA)
			}
		}
		if got := testutil.ToFloat64(missesCount.WithLabelValues("")) - misses; got != 1 {
			t.Errorf("TTL %d, query every %ds: %v misses, want only the first", tc.ttl, tc.every, got)
		}
		// About one upstream query per TTL (refreshes start 1.5 sweeps before expiry).
		if n, max := u.Count(name), int64(secs/int(tc.ttl-1))+2; n > max {
			t.Errorf("TTL %d: upstream saw %d queries in %ds, want at most %d", tc.ttl, n, secs, max)
		}
	}
}

func TestSweepPrunesUnpopular(t *testing.T) {
	u := startLab(t, lab.Config{TTL: 5})
	c, clk := newCache(t, "warmcache", u)
	w := &recorder{}
	query(t, c, w, "once.example.org.", dns.TypeA)
	pruned := testutil.ToFloat64(prunedCount.WithLabelValues(""))
	if n := tick(c, clk, 4*time.Second); n != 0 || c.store.len() != 1 {
		t.Fatalf("before expiry: %d refreshes, %d entries; want 0 and 1", n, c.store.len())
	}
	tick(c, clk, 2*time.Second)
	if c.store.len() != 0 {
		t.Errorf("expired entry asked once not pruned")
	}
	if got := testutil.ToFloat64(prunedCount.WithLabelValues("")) - pruned; got != 1 {
		t.Errorf("pruned_total grew by %v, want 1", got)
	}
	if u.Count("once.example.org.") != 1 {
		t.Errorf("an entry asked once was refreshed")
	}
}

func TestPopularityExpiresAfterWindow(t *testing.T) {
	u := startLab(t, lab.Config{TTL: 5})
	c, clk := newCache(t, "warmcache {\n prefetch 2 10s\n}", u)
	w := &recorder{}
	query(t, c, w, "fade.example.org.", dns.TypeA)
	query(t, c, w, "fade.example.org.", dns.TypeA)
	for range 30 { // nobody asks any more
		tick(c, clk, time.Second)
	}
	if c.store.len() != 0 {
		t.Errorf("entry kept alive %v after its last request, window 10s", 30*time.Second)
	}
	if n := u.Count("fade.example.org."); n < 2 || n > 5 {
		t.Errorf("upstream saw %d queries; want refreshes only within the window", n)
	}
}

func TestRefreshRateLimited(t *testing.T) {
	u := startLab(t, lab.Config{TTL: 5})
	// Ten slots, one refresh a second: the rate is what holds the sweep to one.
	c, clk := newCache(t, "warmcache {\n refreshes 10 1\n}", u)
	w := &recorder{}
	for _, name := range []string{"a.example.org.", "b.example.org.", "c.example.org."} {
		query(t, c, w, name, dns.TypeA)
		query(t, c, w, name, dns.TypeA)
	}
	if n := tick(c, clk, 4*time.Second); n != 1 {
		t.Errorf("sweep started %d refreshes, want 1 (refreshes 10 1)", n)
	}
}

func TestRefreshFailureKeepsEntry(t *testing.T) {
	u := startLab(t, lab.Config{TTL: 5})
	c, clk := newCache(t, "warmcache", u)
	w := &recorder{}
	query(t, c, w, "flaky.example.org.", dns.TypeA)
	query(t, c, w, "flaky.example.org.", dns.TypeA)
	u.SetFault(lab.Fault{Kind: lab.ServFail})
	failed := testutil.ToFloat64(prefetchCount.WithLabelValues("", "failed"))
	tick(c, clk, 4*time.Second)
	if got := testutil.ToFloat64(prefetchCount.WithLabelValues("", "failed")) - failed; got != 1 {
		t.Errorf("prefetch_total{result=failed} grew by %v, want 1", got)
	}
	if m := query(t, c, w, "flaky.example.org.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Errorf("entry replaced by a failed refresh: %v", m)
	}
}

func TestSweeperLifecycle(t *testing.T) {
	c, clk := newCache(t, "warmcache {\n sweep 100ms\n}", nil)
	c.Next = &zoneHandler{rrs: map[string][]dns.RR{
		"a.example.org./A": {mustRR(t, "a.example.org. 30 IN A 192.0.2.1")},
		"b.example.org./A": {mustRR(t, "b.example.org. 30 IN A 192.0.2.2")},
	}}
	ask := func(name string) {
		r := new(dns.Msg)
		r.SetQuestion(name, dns.TypeA)
		c.ServeDNS(context.Background(), &recorder{}, r)
	}
	cached := func(name string) bool {
		return c.store.get(hashKey(name, dns.TypeA, dns.ClassINET, false, false)) != nil
	}
	// Started, the sweeper prunes an entry asked once when it expires, on its own.
	c.start()
	ask("a.example.org.")
	clk.Advance(31 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for cached("a.example.org.") {
		if time.Now().After(deadline) {
			t.Fatal("the started sweeper did not prune an expired entry")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Shut down, it sweeps no more, and a second shutdown and a second start do nothing.
	c.shutdown()
	c.shutdown()
	c.start()
	ask("b.example.org.")
	clk.Advance(31 * time.Second)
	time.Sleep(500 * time.Millisecond) // five intervals
	if !cached("b.example.org.") {
		t.Error("the sweeper ran after shutdown")
	}
}
