package warmcache

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestEvictionKeepsHotNames streams many cold names through a small cache while a set of hot
// names comes back again and again. A hot name returns after 0.7 capacity's worth of cold
// inserts: it must never be evicted, not even before its second query, when it is exactly as
// cold (one request) as every cold name and only younger than most of them.
func TestEvictionKeepsHotNames(t *testing.T) {
	const (
		capacity = 2000
		hot      = 500 // every third query is hot: a hot name returns after 1000 cold ones
		queries  = 15000
	)
	asked := map[string]*atomic.Int64{}
	next := handlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if n := asked[r.Question[0].Name]; n != nil {
			n.Add(1)
		}
		answerHandler(w, r)
	})
	c, clk := newCache(t, fmt.Sprintf("warmcache {\n success %d\n}", capacity), nil)
	c.Next = next
	hotName := func(i int) string { return fmt.Sprintf("hot%d.example.org.", i%hot) }
	for i := range hot {
		asked[hotName(i)] = new(atomic.Int64)
	}
	w := &recorder{}
	for i := range queries {
		clk.Advance(time.Millisecond)
		name := fmt.Sprintf("cold%d.example.org.", i)
		if i%3 == 0 {
			name = hotName(i / 3)
		}
		query(t, c, w, name, dns.TypeA)
		if i%1000 == 0 {
			w.raw = w.raw[:0]
		}
	}
	if n := c.store.len(); n > capacity {
		t.Errorf("%d entries, above the capacity of %d", n, capacity)
	}
	var lost []string
	for name, n := range asked {
		if n.Load() != 1 {
			lost = append(lost, fmt.Sprintf("%s×%d", name, n.Load()))
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d hot names were evicted and fetched again: %v", len(lost), hot, lost)
	}
}
