package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
)

// TestWarmcachePrefetch runs bin/coredns with warmcache (default settings) in front of
// forward to a lab upstream. A name with a 4s TTL polled every 500ms for 30s never misses
// after its first query while the upstream sees about one query per TTL; a name asked once
// is pruned after it expires.
func TestWarmcachePrefetch(t *testing.T) {
	kit.CheckFDs(t)
	up, err := lab.Start(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	// The lab's TCP port differs from its UDP port; prefer_udp keeps forward on UDP.
	s := kit.Start(t, `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    warmcache
    forward . `+up.UDPAddr()+` {
        prefer_udp
    }
}
`)
	const polled, once = "ttl4-poll.example.org.", "ttl2-once.example.org."
	ask := func(name string) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		return s.Exchange(t, m, "udp")
	}
	if r := ask(once); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("%s: %v", once, r)
	}
	start := time.Now()
	polls := 0
	for time.Since(start) < 30*time.Second {
		r := ask(polled)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("poll %d: %v", polls, r)
		}
		polls++
		time.Sleep(500 * time.Millisecond)
	}
	elapsed := time.Since(start)

	if misses := s.Metric(t, "coredns_warmcache_misses_total", nil); misses != 2 {
		t.Errorf("misses_total = %v, want 2 (the first query of each name)", misses)
	}
	if hits := s.Metric(t, "coredns_warmcache_hits_total", nil); hits != float64(polls-1) {
		t.Errorf("hits_total = %v, want %d", hits, polls-1)
	}
	// The TTL is clamped to the 5s minimum; a refresh is due 1.5s before expiry.
	n := up.Count(polled)
	if perTTL := elapsed.Seconds() / 4; float64(n) < perTTL/2 || float64(n) > perTTL*1.5+1 {
		t.Errorf("upstream saw %d queries for %s in %v, want about one per TTL (%.1f)", n, polled, elapsed.Round(time.Second), perTTL)
	}
	if ok := s.Metric(t, "coredns_warmcache_prefetch_total", map[string]string{"result": "ok"}); ok < float64(n-1) {
		t.Errorf("prefetch_total{result=ok} = %v, want %d", ok, n-1)
	}
	if up.Count(once) != 1 {
		t.Errorf("the name asked once was refreshed: %d upstream queries", up.Count(once))
	}
	if pruned := s.Metric(t, "coredns_warmcache_pruned_total", nil); pruned != 1 {
		t.Errorf("pruned_total = %v, want 1 (the name asked once)", pruned)
	}
	if entries := s.Metric(t, "coredns_warmcache_entries", nil); entries != 1 {
		t.Errorf("entries = %v, want 1 (the polled name)", entries)
	}
	t.Logf("%d polls in %v: %d upstream queries for the polled name", polls, elapsed.Round(time.Millisecond), n)
	s.Stop(t)
	if strings.Contains(s.Log(), "[ERROR]") {
		t.Errorf("server logged errors:\n%s", s.Log())
	}
}
