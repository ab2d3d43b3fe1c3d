package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/dnscache/dnscache/test/kit"
)

// racetlsTable prints the last stats table racetls logged (stats 1s) after the lookups.
func (d *demo) racetlsTable() {
	marker := "plugin/racetls: stats"
	before := strings.Count(d.srv.Log(), marker)
	deadline := time.Now().Add(3 * time.Second)
	for strings.Count(d.srv.Log(), marker) <= before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	log := d.srv.Log()
	i := strings.LastIndex(log, marker)
	if i < 0 {
		d.fail("racetls logged no stats table")
		return
	}
	var table []string
	for _, l := range strings.Split(log[i+len(marker):], "\n")[1:] {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "[") {
			break
		}
		table = append(table, "  "+l)
	}
	fmt.Println(strings.Join(table, "\n"))
	fmt.Println("  (p50/p99: replies since the previous report; win%: share of races won)")
	for i, n := range d.names {
		fmt.Printf("  %s = %s\n", d.labs[i].TLSAddr(), n)
	}
}

func (d *demo) cacheCounters() {
	m, err := kit.ScrapeAddr(d.srv.Metrics)
	if err != nil {
		d.fail("metrics: %v", err)
		return
	}
	rows := [][]string{{"counter", "value"}}
	for _, c := range []struct{ label, name string }{
		{"hits", "coredns_warmcache_hits_total"},
		{"misses", "coredns_warmcache_misses_total"},
		{"coalesced misses", "coredns_warmcache_coalesced_total"},
		{"prefetches", "coredns_warmcache_prefetch_total"},
		{"entries", "coredns_warmcache_entries"},
		{"bytes", "coredns_warmcache_bytes"},
	} {
		rows = append(rows, []string{c.label + " (" + c.name + ")", fmt.Sprintf("%.0f", m.Sum(c.name, nil))})
	}
	printRows(rows)
	if m.Sum("coredns_warmcache_hits_total", nil) == 0 {
		d.fail("warmcache counted no hits")
	}
}

func (d *demo) sources() {
	m, err := kit.ScrapeAddr(d.srv.Metrics)
	if err != nil {
		d.fail("metrics: %v", err)
		return
	}
	sock := m.Sum("coredns_unixsock_requests_total", nil)
	udp := m.Sum("coredns_dns_requests_total", map[string]string{"proto": "udp"})
	rows := [][]string{{"path", "requests", "counted by"},
		{"Unix socket (shim, burst)", fmt.Sprintf("%.0f", sock), "coredns_unixsock_requests_total"},
		{"UDP (kdig)", fmt.Sprintf("%.0f", udp), `coredns_dns_requests_total{proto="udp"}`},
	}
	printRows(rows)
	if sock == 0 {
		d.fail("no request came through the socket")
	}
	if udp == 0 {
		d.fail("no request came over UDP")
	}
	fmt.Println()
	rows = [][]string{{"upstream", "queries seen", "TLS handshakes", "resumed"}}
	for i, u := range d.labs {
		st := u.Stats()
		rows = append(rows, []string{d.names[i] + " " + u.TLSAddr(), fmt.Sprint(st.Queries), fmt.Sprint(st.Handshakes), fmt.Sprint(st.Resumed)})
	}
	printRows(rows)
	fmt.Println("  (every miss is raced over all three; the cache answered the rest)")
}

// snapshot returns the metrics now, or nil.
func (d *demo) snapshot() kit.Families {
	m, _ := kit.ScrapeAddr(d.srv.Metrics)
	return m
}

// source describes where the answers given since before came from: warmcache hits, and
// racetls races by winning upstream.
func (d *demo) source(before kit.Families) string {
	after := d.snapshot()
	if before == nil || after == nil {
		return "?"
	}
	var parts []string
	if n := after.Sum("coredns_warmcache_hits_total", nil) - before.Sum("coredns_warmcache_hits_total", nil); n > 0 {
		parts = append(parts, fmt.Sprintf("cache ×%.0f", n))
	}
	for i, u := range d.labs {
		label := map[string]string{"to": "tls://" + u.TLSAddr()}
		if n := after.Sum("coredns_racetls_wins_total", label) - before.Sum("coredns_racetls_wins_total", label); n > 0 {
			parts = append(parts, fmt.Sprintf("%s ×%.0f", d.names[i], n))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
