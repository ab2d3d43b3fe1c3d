package warmcache

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
)

func TestConcurrentMissesCoalesce(t *testing.T) {
	// The upstream is slow enough that all 100 requests arrive while the first is in flight.
	u := startLab(t, lab.Config{Latency: lab.Latency{Dist: lab.Fixed, Median: 200 * time.Millisecond}})
	c, _ := newCache(t, "warmcache", u)
	const n = 100
	var wg sync.WaitGroup
	ws := make([]*recorder, n)
	for i := range n {
		ws[i] = &recorder{}
		wg.Go(func() {
			r := new(dns.Msg)
			r.SetQuestion("Coalesce.Example.org.", dns.TypeA)
			if _, err := c.ServeDNS(context.Background(), ws[i], r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := u.Count("coalesce.example.org."); got != 1 {
		t.Errorf("upstream saw %d queries for %d concurrent misses, want 1", got, n)
	}
	for i, w := range ws {
		if m := w.reply(t); len(m.Answer) != 1 || m.Question[0].Name != "Coalesce.Example.org." {
			t.Errorf("client %d: reply %v", i, m)
		}
	}
	h := hashKey("coalesce.example.org.", dns.TypeA, dns.ClassINET, false, false)
	if e := c.store.get(h); e == nil || e.hits != n {
		t.Errorf("entry popularity %v, want %d (every coalesced request counts)", e, n)
	}
}

func TestUpstreamFailureNotCoalescedForever(t *testing.T) {
	// A next plugin that fails without writing: clients get its error; a brief SERVFAIL
	// entry answers the retries.
	c, _ := newCache(t, "warmcache", nil)
	calls := 0
	c.Next = failHandler(func() { calls++ })
	w := &recorder{}
	r := new(dns.Msg)
	r.SetQuestion("down.example.org.", dns.TypeA)
	rc, err := c.ServeDNS(context.Background(), w, r)
	if rc != dns.RcodeServerFailure || err == nil {
		t.Fatalf("rcode %d, err %v: want SERVFAIL and the error", rc, err)
	}
	m := query(t, c, w, "down.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure || calls != 1 {
		t.Errorf("retry: rcode %d, upstream calls %d; want a cached SERVFAIL and 1 call", m.Rcode, calls)
	}
	// With no SERVFAIL entry, every retry is a new flight to the upstream, not a wait for
	// the failed one.
	c, _ = newCache(t, "warmcache {\n servfail 0\n}", nil)
	calls = 0
	c.Next = failHandler(func() { calls++ })
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.ServeDNS(ctx, w, r)
		waited := ctx.Err() != nil
		cancel()
		if err == nil || calls != i+1 || waited {
			t.Fatalf("retry %d without a SERVFAIL entry: err %v, %d upstream calls", i, err, calls)
		}
	}
}
