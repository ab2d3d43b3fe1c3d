package warmcache

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/cache"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// packWriter discards replies the way the server's writer sends them: WriteMsg packs.
// Its addresses are fixed, as a server connection's are (test.ResponseWriter allocates them).
type packWriter struct{ test.ResponseWriter }

var (
	benchRemote = &net.UDPAddr{IP: net.IPv4(10, 240, 0, 1), Port: 40212}
	benchLocal  = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
)

func (w *packWriter) RemoteAddr() net.Addr { return benchRemote }
func (w *packWriter) LocalAddr() net.Addr  { return benchLocal }

func (w *packWriter) WriteMsg(m *dns.Msg) error {
	_, err := m.Pack()
	return err
}

// answerHandler answers every A query with two addresses, TTL 300.
var answerHandler = handlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	for _, s := range []string{"192.0.2.1", "192.0.2.2"} {
		rr, _ := dns.NewRR(r.Question[0].Name + " 300 IN A " + s)
		m.Answer = append(m.Answer, rr)
	}
	w.WriteMsg(m)
})

func benchQuery() *dns.Msg {
	r := new(dns.Msg)
	r.SetQuestion("WwW.Example.ORG.", dns.TypeA)
	r.SetEdns0(1232, false)
	return r
}

// BenchmarkHit compares a hit in warmcache with a hit in CoreDNS's cache, same query, same
// answer, in one run. "cache" includes packing the reply, which its writer does on a real
// server; warmcache hands the server bytes where the chain allows it (raw), and a
// *dns.Msg where it does not (writemsg).
func BenchmarkHit(b *testing.B) {
	ctx := context.Background()
	b.Run("warmcache", func(b *testing.B) {
		c := New()
		c.Next = answerHandler
		c.mode.Store(uint32(rawAlways))
		benchServe(b, ctx, c, func() dns.ResponseWriter { return &packWriter{} })
	})
	b.Run("warmcache-behind-prometheus-writers", func(b *testing.B) {
		// The writers `prometheus` puts before warmcache, pluginWriters included.
		c := New()
		c.Next = answerHandler
		c.mode.Store(uint32(rawNoError))
		benchServe(b, ctx, c, func() dns.ResponseWriter { return chainWriter(ctx, &packWriter{}) })
	})
	b.Run("warmcache-writemsg", func(b *testing.B) {
		c := New()
		c.Next = answerHandler
		benchServe(b, ctx, c, func() dns.ResponseWriter { return &packWriter{} })
	})
	b.Run("cache", func(b *testing.B) {
		ca := cache.New()
		ca.Next = answerHandler
		benchServe(b, ctx, ca, func() dns.ResponseWriter { return &packWriter{} })
	})
}

// chainWriter returns the writer a plugin after prometheus is given:
// pluginWriter{metrics.Recorder{w}}.
func chainWriter(ctx context.Context, w dns.ResponseWriter) dns.ResponseWriter {
	var got dns.ResponseWriter
	grab := plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, _ *dns.Msg) (int, error) {
		got = w
		return 0, nil
	})
	plugin.NextOrFailure("prometheus", grab, ctx, metrics.NewRecorder(w), new(dns.Msg))
	return got
}

type handler interface {
	ServeDNS(context.Context, dns.ResponseWriter, *dns.Msg) (int, error)
}

func benchServe(b *testing.B, ctx context.Context, h handler, newW func() dns.ResponseWriter) {
	r := benchQuery()
	if _, err := h.ServeDNS(ctx, newW(), r); err != nil { // the miss that fills the cache
		b.Fatal(err)
	}
	w := newW()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h.ServeDNS(ctx, w, r)
	}
}

// storeEntry returns a one-A entry for name number i, stored at now with one request.
func storeEntry(tb testing.TB, i int, now int64) *entry {
	name := fmt.Sprintf("n%d.example.org.", i)
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Response = true
	rr, err := dns.NewRR(name + " 300 IN A 192.0.2.1")
	if err != nil {
		tb.Fatal(err)
	}
	m.Answer = []dns.RR{rr}
	k := makeKey(name, dns.TypeA, dns.ClassINET, false, false)
	e := newEntry(k, hashKey(name, dns.TypeA, dns.ClassINET, false, false), m, classSuccess, 300, time.Unix(0, now))
	if e == nil {
		tb.Fatal("entry not packed")
	}
	e.hits, e.lastHit = 1, now
	return e
}

// BenchmarkStore compares sharded locking with a single mutex under parallel lookups with
// 1% inserts.
func BenchmarkStore(b *testing.B) {
	for _, shards := range []int{1, 64} {
		b.Run(map[int]string{1: "single-mutex", 64: "64-shards"}[shards], func(b *testing.B) {
			s := newStore(shards, [3]int64{1 << 20, 1 << 20, 1 << 20}, 0)
			b.Cleanup(s.close)
			const keys = 4096
			es := make([]*entry, keys)
			for i := range es {
				es[i] = storeEntry(b, i, 0)
				s.put(es[i], 0)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					e := es[i%keys]
					if i%100 == 0 {
						s.put(e, 0)
						continue
					}
					p := probe{name: e.key.name, qtype: e.key.qtype, qclass: e.key.qclass}
					if s.lookup(e.hash, &p, nil); !p.found {
						b.Error("lost entry")
					}
				}
			})
		})
	}
}

// BenchmarkStoreEvict is the cost of an insert into a full store: every put evicts one entry.
func BenchmarkStoreEvict(b *testing.B) {
	const capacity = 4096
	s := newStore(defaultShards, [3]int64{capacity, capacity, capacity}, 0)
	b.Cleanup(s.close)
	now := int64(1)
	for i := range capacity {
		s.put(storeEntry(b, i, now), now)
		now++
	}
	es := make([]*entry, b.N)
	for i := range es {
		es[i] = storeEntry(b, capacity+i, now+int64(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i, e := range es {
		s.put(e, now+int64(i))
	}
}
