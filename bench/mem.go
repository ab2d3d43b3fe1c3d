package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dnscache/dnscache/test/kit"
)

// memCase is one cache filled with unique names.
type memCase struct {
	name    string
	cache   string
	entries func(kit.Families) float64 // entries held, from /metrics
	reason  string
}

// runMem fills stock cache and warmcache with unique names answered by the template plugin
// (no network in the fill) and reports RSS and Go heap per entry at 100k and 1M entries.
func runMem(ctx context.Context, s *suite) error {
	sizes := pick(s, []int{50_000}, []int{100_000, 1_000_000})
	cases := []memCase{
		{name: "stock cache", cache: "cache 3600 {\n    success 1200000\n    denial 1000\n}",
			entries: func(m kit.Families) float64 {
				return m.Sum("coredns_cache_entries", map[string]string{"type": "success"})
			}},
		{name: "warmcache", cache: "warmcache {\n    success 1200000\n    denial 1000\n    max_bytes 4G\n}",
			entries: func(m kit.Families) float64 { return m.Sum("coredns_warmcache_entries", nil) }},
	}
	if !s.has("warmcache") {
		cases[1].reason = s.missing("warmcache")
	}
	// Memory is not a race between servers: let the fill use both cores.
	cpu := s.serverCPU
	s.serverCPU = ""
	defer func() { s.serverCPU = cpu }()
	t := s.rep.table("6. Memory per entry: unique A names (one A record each) answered by the template plugin",
		"Δ from the server's state after start-up to after the fill (and 2 s to settle). RSS includes garbage the GC has not returned; heap is go_memstats_heap_inuse_bytes. The server is not pinned here. warmcache: max_bytes 4G so that its byte bound does not evict.",
		"case", "names sent", "entries held", "RSS", "Δ RSS / entry", "Δ heap / entry")
	for _, c := range cases {
		if c.reason != "" {
			t.add(c.name, c.reason, "", "", "", "")
			continue
		}
		ch := chain{metrics: true, cache: c.cache,
			upstream: "template IN A example {\n    answer \"{{`{{ .Name }}`}} 3600 IN A 198.18.0.1\"\n}"}
		srv, err := s.startCoreDNS("mem", ch.corefile(), nil, nil)
		if err != nil {
			return err
		}
		err = s.memOne(ctx, srv, c, sizes, t)
		if serr := srv.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

func (s *suite) memOne(ctx context.Context, srv *server, c memCase, sizes []int, t *table) error {
	time.Sleep(500 * time.Millisecond)
	rss0, err := srv.RSS()
	if err != nil {
		return err
	}
	m0, err := kit.ScrapeAddr(srv.Metrics)
	if err != nil {
		return err
	}
	heap0 := m0.Sum("go_memstats_heap_inuse_bytes", nil)
	sent := 0
	for _, size := range sizes {
		start := sent
		res, err := kit.Load{
			Network: "udp", Addr: srv.DNS, Conns: 4, InFlight: 64, Count: size - start, Duration: 5 * time.Minute,
			Next: func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("mem%d.example.", start+i)} },
		}.Run(ctx)
		if err != nil {
			return err
		}
		sent = size
		time.Sleep(2 * time.Second)
		rss, err := srv.RSS()
		if err != nil {
			return err
		}
		m, err := kit.ScrapeAddr(srv.Metrics)
		if err != nil {
			return err
		}
		n := c.entries(m)
		heap := m.Sum("go_memstats_heap_inuse_bytes", nil)
		per := func(d float64) string {
			if n == 0 {
				return "-"
			}
			return fmt.Sprintf("%.0f B", d/n)
		}
		t.add(c.name, fmt.Sprint(size), fmt.Sprintf("%.0f", n), fmt.Sprintf("%.0f MiB", float64(rss)/(1<<20)),
			per(float64(rss-rss0)), per(heap-heap0))
		fmt.Printf("   %-12s %8d names: %8.0f entries, RSS %4.0f MiB, %s/entry (RSS), %s/entry (heap); fill %.0f qps, %d timeouts\n",
			c.name, size, n, float64(rss)/(1<<20), per(float64(rss-rss0)), per(heap-heap0), res.QPS(), res.Timeouts)
	}
	return nil
}
