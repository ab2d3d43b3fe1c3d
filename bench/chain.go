package main

import (
	"fmt"
	"strings"

	"github.com/dnscache/dnscache/test/lab"
)

// chain is a server block under test; corefile renders it as a template over server.
type chain struct {
	metrics  bool     // prometheus on {{.Metrics}}
	unixsock bool     // unixsock on {{.Sock}}
	cache    string   // the cache directive with its block, or ""
	upstream string   // the forwarding directive with its block
	extra    []string // more directives
}

func (c chain) corefile() string { return c.block("{{.Port}}", true) }

// block renders the server block on port; side adds ready and pprof, which one block of a
// Corefile may hold.
func (c chain) block(port string, side bool) string {
	var b strings.Builder
	b.WriteString(".:" + port + " {\n    bind 127.0.0.1\n")
	if side {
		b.WriteString("    ready {{.Ready}}\n    pprof {{.Pprof}}\n")
	}
	if c.metrics {
		b.WriteString("    prometheus {{.Metrics}}\n")
	}
	if c.unixsock {
		b.WriteString("    unixsock {{.Sock}}\n")
	}
	for _, d := range append(append(c.extra, c.cache), c.upstream) {
		if d != "" {
			b.WriteString("    " + strings.ReplaceAll(d, "\n", "\n    ") + "\n")
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// forward returns a forward directive to the DoT upstreams with the given options.
func forward(opts ...string) string {
	return block("forward . {{range .Up}}tls://{{.}} {{end}}",
		append([]string{"tls {{.CA}}", "tls_servername {{.ServerName}}"}, opts...))
}

// racetls returns a racetls directive to the DoT upstreams with the given options.
func racetls(opts ...string) string {
	return block("racetls . {{range .Up}}tls://{{.}}%{{$.ServerName}} {{end}}",
		append([]string{"tls {{.CA}}"}, opts...))
}

// block renders "head{\n    opt\n}".
func block(head string, opts []string) string {
	if len(opts) == 0 {
		return head
	}
	return head + "{\n    " + strings.Join(opts, "\n    ") + "\n}"
}

// labSet is a set of lab upstreams sharing the suite's CA.
type labSet []*lab.Upstream

func (s *suite) startLabs(cfgs ...lab.Config) (labSet, error) {
	var set labSet
	for _, cfg := range cfgs {
		cfg.CA, cfg.ServerName = s.ca, s.serverName
		u, err := lab.Start(cfg)
		if err != nil {
			set.close()
			return nil, fmt.Errorf("lab upstream: %w", err)
		}
		set = append(set, u)
	}
	return set, nil
}

func (set labSet) tls() []string {
	var a []string
	for _, u := range set {
		a = append(a, u.TLSAddr())
	}
	return a
}

func (set labSet) close() {
	for _, u := range set {
		u.Close()
	}
}

// stats sums the upstreams' counters.
func (set labSet) stats() lab.Stats {
	var t lab.Stats
	for _, u := range set {
		s := u.Stats()
		t.Queries += s.Queries
		t.QueriesTLS += s.QueriesTLS
		t.Conns += s.Conns
		t.OpenConns += s.OpenConns
		t.Handshakes += s.Handshakes
		t.Resumed += s.Resumed
	}
	return t
}

func diffStats(a, b lab.Stats) lab.Stats {
	return lab.Stats{
		Queries: a.Queries - b.Queries, QueriesTLS: a.QueriesTLS - b.QueriesTLS,
		Conns: a.Conns - b.Conns, OpenConns: a.OpenConns,
		Handshakes: a.Handshakes - b.Handshakes, Resumed: a.Resumed - b.Resumed,
	}
}
