package warmcache

import (
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
)

func TestAdoptAppliesNewSettings(t *testing.T) {
	u := startLab(t, lab.Config{TTL: 300})
	old, clk := newCache(t, "warmcache", u)
	w := &recorder{}
	query(t, old, w, "kept.example.org.", dns.TypeA)
	query(t, old, w, "kept.example.org.", dns.TypeA)
	query(t, old, w, "out.example.net.", dns.TypeA)
	query(t, old, w, "servfail.example.org.", dns.TypeA)
	query(t, old, w, "nx.example.org.", dns.TypeA)
	query(t, old, w, "ttl10-gone.example.org.", dns.TypeA)
	clk.Advance(20 * time.Second) // ttl10-gone has expired; 280 s left for the others, 10 s for NXDOMAIN

	c, _ := newCache(t, "warmcache example.org {\n success 100 60\n servfail 0s\n}", u)
	c.now = clk.Now
	c.Next = old.Next
	kept, dropped := c.adopt(old)
	if kept != 2 || dropped != 0 {
		t.Errorf("adopted %d, dropped %d; want 2 (kept and nx.example.org) and 0", kept, dropped)
	}
	if m := query(t, c, w, "nx.example.org.", dns.TypeA); m.Rcode != dns.RcodeNameError || u.Count("nx.example.org.") != 1 {
		t.Errorf("adopted NXDOMAIN not answered from the cache: %v", m)
	}
	m := query(t, c, w, "kept.example.org.", dns.TypeA)
	if ttl := m.Answer[0].Header().Ttl; ttl > 60 {
		t.Errorf("adopted TTL %d, want at most the new maximum 60", ttl)
	}
	if n := u.Count("kept.example.org."); n != 1 {
		t.Errorf("upstream asked %d times for an adopted entry, want once", n)
	}
	if e := c.store.get(hashKey("kept.example.org.", dns.TypeA, dns.ClassINET, false, false)); e == nil || e.hits < 2 {
		t.Errorf("adopted entry lost its popularity: %v", e)
	}
	for _, name := range []string{"out.example.net.", "servfail.example.org.", "ttl10-gone.example.org."} {
		if e := c.store.get(hashKey(name, dns.TypeA, dns.ClassINET, false, false)); e != nil {
			t.Errorf("%s adopted, want it dropped (zone, servfail 0s, expired)", name)
		}
	}
}

func TestAdoptHottestFirstAndNewerWins(t *testing.T) {
	u := startLab(t, lab.Config{TTL: 300})
	old, clk := newCache(t, "warmcache", u)
	w := &recorder{}
	for _, name := range []string{"a.example.org.", "b.example.org.", "c.example.org."} {
		query(t, old, w, name, dns.TypeA)
		clk.Advance(time.Second)
	}
	query(t, old, w, "a.example.org.", dns.TypeA) // a is the hottest, then c (the most recent)

	c, _ := newCache(t, "warmcache {\n success 2\n}", u)
	c.now = clk.Now
	c.Next = old.Next
	if kept, dropped := c.adopt(old); kept != 2 || dropped != 1 {
		t.Fatalf("adopted %d, dropped %d; want 2 and 1", kept, dropped)
	}
	for name, want := range map[string]bool{"a.example.org.": true, "b.example.org.": false, "c.example.org.": true} {
		if got := c.store.get(hashKey(name, dns.TypeA, dns.ClassINET, false, false)) != nil; got != want {
			t.Errorf("%s adopted %v, want %v", name, got, want)
		}
	}

	// The second pass (the old instance's shutdown) does not replace what the new cache
	// fetched itself since.
	clk.Advance(time.Second)
	h := hashKey("c.example.org.", dns.TypeA, dns.ClassINET, false, false)
	c.store.remove(c.store.get(h).ref)
	query(t, c, w, "c.example.org.", dns.TypeA)
	mine := c.store.get(h)
	c.adopt(old)
	if got := c.store.get(h); got.ref != mine.ref {
		t.Errorf("an older adopted entry replaced the newer one")
	}
}
