package unixsock

import (
	"fmt"
	"testing"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/frontdoor"
	"github.com/miekg/dns"
)

// TestDoorRepliesTogether: the front door's replies to queries that arrive together (a
// resolver's A and AAAA, sent in one write) go out in one write, so the client wakes once; a
// hit that arrives alone is written at once.
func TestDoorRepliesTogether(t *testing.T) {
	up := upstream(t, 0) // answers every name with an A
	sock := sockPath(t)
	start(t, fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s\nwarmcache\nforward . %s\n}", sock, up))
	addr := "unix://" + sock
	writes := writesTotal.WithLabelValues(addr)
	hits := frontdoor.HitsCounter(addr)

	c := dial(t, sock)
	// ask sends queries for names (ids id, id+1, ...) in one write and reads their replies.
	ask := func(id uint16, names ...string) {
		t.Helper()
		var qs [][]byte
		for i, n := range names {
			qs = append(qs, query(id+uint16(i), n, dns.TypeA)) // #nosec G115 -- a few names
		}
		c.send(qs...)
		seen := map[uint16]bool{}
		for range names {
			m := c.recv()
			i := int(m.Id) - int(id)
			if i < 0 || i >= len(names) || seen[m.Id] || m.Question[0].Name != names[i] || len(m.Answer) != 1 {
				t.Fatalf("reply id %d for %v to queries %d.. for %v", m.Id, m.Question, id, names)
			}
			seen[m.Id] = true
		}
	}
	ask(1, "a.example.", "b.example.") // misses: the chain fills the cache

	const n = 50
	w0, h0 := value(writes), value(hits)
	for i := range n {
		ask(uint16(10+2*i), "a.example.", "b.example.") // #nosec G115 -- small
	}
	if got := value(hits) - h0; got != 2*n {
		t.Fatalf("front door hits grew by %v, want %d: the door did not answer", got, 2*n)
	}
	if got := value(writes) - w0; got != n {
		t.Errorf("%d pairs of hits sent together took %v writes, want %d (one per pair)", n, got, n)
	}

	w0 = value(writes)
	ask(200, "a.example.")
	ask(201, "b.example.")
	if got := value(writes) - w0; got != 2 {
		t.Errorf("two hits sent apart took %v writes, want 2", got)
	}
}

// TestDoorHitBesideMiss: a hit that arrives together with a miss is written before the reader
// waits for more, not held back until the miss is answered.
func TestDoorHitBesideMiss(t *testing.T) {
	up := upstream(t, time.Second) // "slow" names are answered after 1 s
	sock := sockPath(t)
	start(t, fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s\nwarmcache\nforward . %s\n}", sock, up))
	addr := "unix://" + sock
	writes := writesTotal.WithLabelValues(addr)

	c := dial(t, sock)
	c.send(query(1, "fast.example.", dns.TypeA))
	c.recv() // a miss: now cached

	w0 := value(writes)
	c.send(query(2, "fast.example.", dns.TypeA), query(3, "slow.example.", dns.TypeA))
	first, second := c.recv(), c.recv()
	if first.Id != 2 || second.Id != 3 {
		t.Fatalf("want the hit (id 2) before the miss (id 3), got %d then %d", first.Id, second.Id)
	}
	if got := value(writes) - w0; got != 2 {
		t.Errorf("the hit and the slow miss took %v writes, want 2: the hit waited for the miss", got)
	}
}
