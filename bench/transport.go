package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// transportUpstream is CoreDNS's own server, run by bin/coredns, answering every A query at
// once (template) over plain DNS, DoT, DoQ and DoH: the upstream of the transport group. The
// template plugin's own {{ .Name }} is escaped from the suite's template.
const transportUpstream = `{{define "body"}} {
    bind 127.0.0.1
    tls {{$.Cert}} {{$.Key}}
    template IN A {
        answer "{{"{{ .Name }}"}} 60 IN A 192.0.2.53"
    }
    template IN NS {
        rcode NOERROR
    }
}
{{end}}dns://.:{{.Port}} {
    bind 127.0.0.1
    template IN A {
        answer "{{"{{ .Name }}"}} 60 IN A 192.0.2.53"
    }
    template IN NS {
        rcode NOERROR
    }
}
tls://.:{{index .Extra 0}}{{template "body" .}}quic://.:{{index .Extra 1}}{{template "body" .}}https://.:{{index .Extra 2}}{{template "body" .}}`

// transportServer is the upstream's template data: the server and three more ports.
type transportServer struct {
	*server
	Extra []int // DoT, DoQ and DoH ports
}

// runTransport measures miss latency per transport (issue 16): stock forward and racetls,
// each with one upstream, CoreDNS's own dns://, tls://, quic:// and https:// servers on
// loopback (no added latency: what is measured is the forwarder and the transport), unique
// names at a fixed rate.
func runTransport(ctx context.Context, s *suite) error {
	if !s.has("racetls", "template", "tls") {
		fmt.Printf("   %s\n", s.missing("racetls", "template", "tls"))
		return nil
	}
	up, err := s.newServer("upstream")
	if err != nil {
		return err
	}
	// The upstream runs with the load generators, off the server core.
	up.Wrap = nil
	if s.clientCPU != "" {
		up.Wrap = []string{"taskset", "-c", s.clientCPU}
	}
	if err := s.ca.WriteFiles(up.Dir); err != nil {
		return err
	}
	ts := &transportServer{server: up}
	for range 3 {
		p, err := kit.Port()
		if err != nil {
			return err
		}
		ts.Extra = append(ts.Extra, p)
	}
	if err := up.Launch(transportUpstream, ts); err != nil {
		os.RemoveAll(up.Dir)
		return fmt.Errorf("upstream: %w", err)
	}
	defer up.stop()
	addr := func(i int) string {
		if i < 0 {
			return up.DNS
		}
		return "127.0.0.1:" + strconv.Itoa(ts.Extra[i])
	}
	ca := filepath.Join(up.Dir, lab.CAFile)

	type tcase struct {
		scheme, fw string
		chain      chain
	}
	var cases []tcase
	for i, scheme := range []string{"dns", "tls", "quic", "https"} {
		a := addr(i - 1)
		fw := "forward . " + scheme + "://" + a
		rt := "racetls . " + scheme + "://" + a
		if scheme != "dns" {
			fw += " {\n    tls " + ca + "\n    tls_servername " + s.serverName + "\n}"
			rt += "%" + s.serverName + " {\n    tls " + ca + "\n}"
		}
		cases = append(cases,
			tcase{scheme, "forward", chain{cache: "cache 3600", upstream: fw}},
			tcase{scheme, "racetls", chain{cache: "warmcache", upstream: rt}})
	}

	rate := pick(s, 200.0, 400.0)
	count := pick(s, 400, 4000)
	t := s.rep.table("Miss latency per transport: one upstream, CoreDNS's own server on loopback",
		fmt.Sprintf("bin/coredns serving dns://, tls://, quic:// and https:// (template, no added latency) on the load core; "+
			"the Go generator over UDP at %.0f qps, %d unique names per case.", rate, count),
		"transport", "forwarder", "p50", "p90", "p99", "p99.9", "SERVFAIL", "timeouts", "p50 vs forward")
	p50 := map[string]time.Duration{}
	for ci, c := range cases {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		srv, err := s.startCoreDNS("transport", c.chain.corefile(), nil, nil)
		if err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond) // racetls dials at start-up; forward on the first query
		res, err := kit.Load{
			Network: "udp", Addr: srv.DNS, Conns: 2, InFlight: 256, Rate: rate, Count: count,
			Duration: time.Duration(float64(count)/rate*float64(time.Second)) + 5*time.Second,
			Timeout:  5 * time.Second,
			Next: func(i int) kit.Query {
				return kit.Query{Name: fmt.Sprintf("t%d-%d.example.", ci, i)}
			},
		}.Run(ctx)
		if serr := srv.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", c.scheme, c.fw, err)
		}
		h := &res.Latency
		ratio := ""
		if c.fw == "forward" {
			p50[c.scheme] = h.Quantile(0.5)
		} else if f := p50[c.scheme]; f > 0 {
			ratio = fmt.Sprintf("%.2f×", float64(h.Quantile(0.5))/float64(f))
		}
		t.add(c.scheme+"://", c.fw, fdur(h.Quantile(0.5)), fdur(h.Quantile(0.9)), fdur(h.Quantile(0.99)),
			fdur(h.Quantile(0.999)), fmt.Sprint(res.Rcodes[2]), fmt.Sprint(res.Timeouts), ratio)
		fmt.Printf("   %-6s %-8s p50 %-8s p99 %-8s servfail %d timeouts %d\n", c.scheme, c.fw,
			fdur(h.Quantile(0.5)), fdur(h.Quantile(0.99)), res.Rcodes[2], res.Timeouts)
	}
	return nil
}
