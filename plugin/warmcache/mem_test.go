package warmcache

import (
	"bytes"
	"context"

	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// oneAHandler answers every query with one A record, TTL 3600, as the template plugin of
// `make bench`'s memory group does.
var oneAHandler = handlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600},
		A: []byte{198, 18, 0, 1}}}
	w.WriteMsg(m)
})

// BenchmarkMemoryPerEntry fills a cache with unique one-A names through ServeDNS (10k,
// 100k, 1M) and reports, per entry: the Go heap and the process's RSS it added (after a
// collection, with freed pages returned), the heap objects it added, and what max_bytes
// counts; and how long a full collection takes with the cache filled, which does not
// grow with the entries when none of them is a Go object. Run it with -benchtime 1x;
// -race changes where entries live (mem_heap.go).
func BenchmarkMemoryPerEntry(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(strconv.Itoa(n/1000)+"k", func(b *testing.B) {
			for range b.N {
				memFill(b, n)
			}
		})
	}
}

func memFill(b *testing.B, n int) {
	c := New()
	c.Next = oneAHandler
	c.pcap, c.maxBytes = 1_200_000, 4<<30
	c.init()
	ctx := context.Background()
	w := &discard{}
	r := new(dns.Msg)
	r.SetQuestion("mem0.example.", dns.TypeA)
	c.ServeDNS(ctx, w, r) // the metrics and pools the first query sets up

	heap0, objs0, rss0 := memNow(b)
	for i := range n {
		r.SetQuestion("mem"+strconv.Itoa(i+1)+".example.", dns.TypeA)
		c.ServeDNS(ctx, w, r)
	}
	heap, objs, rss := memNow(b)
	if got := c.store.len(); got != int64(n)+1 {
		b.Fatalf("%d entries, want %d", got, n+1)
	}
	var gc time.Duration
	for range 3 {
		t := time.Now()
		runtime.GC()
		if d := time.Since(t); gc == 0 || d < gc {
			gc = d
		}
	}
	b.ReportMetric(float64(heap-heap0)/float64(n), "heap-B/entry")
	b.ReportMetric(float64(rss-rss0)/float64(n), "RSS-B/entry")
	b.ReportMetric(float64(objs-objs0)/float64(n), "heap-objects/entry")
	b.ReportMetric(float64(c.store.bytes.Load())/float64(c.store.len()), "counted-B/entry")
	b.ReportMetric(float64(gc.Microseconds()), "GC-µs")
	runtime.KeepAlive(c)
	c.store.close()
}

// discard is a client writer that drops what it is sent.
type discard struct{ recorder }

func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteMsg(*dns.Msg) error     { return nil }

// memNow returns the Go heap in use, the heap objects and the resident set size, after a
// collection that returns freed pages to the kernel.
func memNow(tb testing.TB) (heap, objects, rss int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		tb.Skip("no /proc/self/statm")
	}
	f := bytes.Fields(status)
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return int64(ms.HeapInuse), int64(ms.HeapObjects), pages * int64(os.Getpagesize()) // #nosec G115 -- sizes
}
