package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/dnscache/dnscache/test/lossy"
)

// runLink measures issue 16's targets across transports (the transport group measures each
// transport alone on loopback):
//
//   - mixed: three lab upstreams of mixed transports (DoQ, DoH, DoT), the fastest stalling,
//     racetls `race all` against forward `policy random` over the same three;
//   - cost: upstream connections and handshakes per 10k client queries, per transport
//     (dns, tls, quic, https), forward and racetls, against one lab upstream each;
//   - lossy: DoQ against DoT across a link that loses 2 % of packets each way (test/lossy,
//     two network namespaces and TUN devices): bin/coredns's own quic:// and tls:// server
//     blocks in the far namespace, the forwarder under test in the near one, driven over its
//     unixsock socket.
func runLink(ctx context.Context, s *suite) error {
	if !s.has("racetls", "template", "tls", "unixsock") {
		fmt.Printf("   %s\n", s.missing("racetls", "template", "tls", "unixsock"))
		return nil
	}
	if err := s.linkMixed(ctx); err != nil {
		return fmt.Errorf("mixed: %w", err)
	}
	if err := s.linkCost(ctx); err != nil {
		return fmt.Errorf("cost: %w", err)
	}
	return s.linkLossy(ctx)
}

// mixedLatency are the three upstreams of the mixed race: DoQ (8 ms, stalling 300 ms on 3 %),
// DoH (15 ms) and DoT (25 ms), as the miss group's skewed DoT upstreams.
var mixedUpstreams = []struct {
	scheme string
	lat    lab.Latency
}{
	{"quic", skewed[0]},
	{"https", skewed[1]},
	{"tls", skewed[2]},
}

// labFor returns a lab configuration that serves only scheme.
func labFor(scheme string, l lab.Latency, seed uint64) lab.Config {
	cfg := lab.Config{Latency: l, UDP: "-", TCP: "-", TLS: "-", Seed: seed}
	switch scheme {
	case "dns":
		cfg.UDP, cfg.TCP = "", ""
	case "tls":
		cfg.TLS = ""
	case "quic":
		cfg.DoQ = "127.0.0.1:0"
	case "https":
		cfg.DoH = "127.0.0.1:0"
	}
	return cfg
}

func labAddr(u *lab.Upstream, scheme string) string {
	switch scheme {
	case "dns":
		return u.UDPAddr()
	case "quic":
		return u.DoQAddr()
	case "https":
		return u.DoHAddr()
	}
	return u.TLSAddr()
}

// upstreams renders forward's and racetls's directives to the given scheme://addr list.
func (s *suite) upstreams(schemes, addrs []string, fwOpts, rtOpts []string) (fw, rt string) {
	var f, r []string
	tlsy := false
	for i, sc := range schemes {
		f = append(f, sc+"://"+addrs[i])
		if sc == "dns" {
			r = append(r, sc+"://"+addrs[i])
			continue
		}
		tlsy = true
		r = append(r, sc+"://"+addrs[i]+"%"+s.serverName)
	}
	if tlsy {
		fwOpts = append([]string{"tls {{.CA}}", "tls_servername {{.ServerName}}"}, fwOpts...)
		rtOpts = append([]string{"tls {{.CA}}"}, rtOpts...)
	}
	return block("forward . "+strings.Join(f, " ")+" ", fwOpts), block("racetls . "+strings.Join(r, " ")+" ", rtOpts)
}

// linkRun runs one forwarder against labs and returns the load's result and the labs'
// counters from before the server's start (racetls dials at start-up) to the end.
func (s *suite) linkRun(ctx context.Context, c chain, labs labSet, prefix string, rate float64, count int,
	profile string) (*kit.Result, []lab.Stats, string, error) {
	before := make([]lab.Stats, len(labs))
	for i, u := range labs {
		before[i] = u.Stats()
	}
	srv, err := s.startCoreDNS("link", c.corefile(), nil, nil)
	if err != nil {
		return nil, nil, "", err
	}
	time.Sleep(300 * time.Millisecond)
	dur := time.Duration(float64(count) / rate * float64(time.Second))
	var wait func() error
	file := ""
	if profile != "" {
		file = filepath.Join(s.out, profile+".pprof")
		wait = srv.profile(max(dur-time.Second, time.Second), file)
	}
	res, err := kit.Load{
		Network: "udp", Addr: srv.DNS, Conns: 2, InFlight: 256, Rate: rate, Count: count,
		Duration: dur + 5*time.Second, Timeout: 5 * time.Second,
		Next: func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("%s-%d.example.", prefix, i)} },
	}.Run(ctx)
	if wait != nil {
		if perr := wait(); perr != nil {
			s.rep.errorf("profile %s: %v", profile, perr)
			file = ""
		}
	}
	after := make([]lab.Stats, len(labs))
	for i, u := range labs {
		after[i] = diffStats(u.Stats(), before[i])
	}
	if serr := srv.stop(); err == nil {
		err = serr
	}
	return res, after, file, err
}

// linkMixed: target (a), miss p99 over three upstreams of mixed transports, one stalling.
func (s *suite) linkMixed(ctx context.Context) error {
	var cfgs []lab.Config
	var schemes []string
	for i, m := range mixedUpstreams {
		cfgs = append(cfgs, labFor(m.scheme, m.lat, uint64(31+i)))
		schemes = append(schemes, m.scheme)
	}
	labs, err := s.startLabs(cfgs...)
	if err != nil {
		return err
	}
	defer labs.close()
	var addrs []string
	for i, u := range labs {
		addrs = append(addrs, labAddr(u, schemes[i]))
	}
	fw, rt := s.upstreams(schemes, addrs, []string{"policy random"}, []string{"race all"})
	cases := []struct {
		name string
		c    chain
	}{
		{"forward policy random", chain{cache: "cache 3600", upstream: fw}},
		{"racetls race all", chain{cache: "warmcache", upstream: rt}},
	}
	rate := pick(s, 200.0, 300.0)
	count := pick(s, 600, 3000)
	t := s.rep.table("7. Miss latency, three upstreams of mixed transports: DoQ 8 ms (stalls 300 ms on 3 %), DoH 15 ms, DoT 25 ms",
		fmt.Sprintf("Lab upstreams (lognormal, σ 0.4), one per transport; the Go generator over UDP at %.0f qps, %d unique names per case. "+
			"Upstream q: queries each upstream got per client query.", rate, count),
		"case", "p50", "p90", "p99", "p99.9", "SERVFAIL", "timeouts", "DoQ q", "DoH q", "DoT q")
	var p99 [2]time.Duration
	var profs [2]string
	for ci, c := range cases {
		prof := ""
		if !s.quick {
			prof = "link-mixed-" + strings.Fields(c.name)[0]
		}
		res, up, file, err := s.linkRun(ctx, c.c, labs, fmt.Sprintf("x%d", ci), rate, count, prof)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		h := &res.Latency
		per := func(i int) string { return fmt.Sprintf("%.2f", float64(up[i].Queries)/float64(max(res.Sent, 1))) }
		t.add(c.name, fdur(h.Quantile(0.5)), fdur(h.Quantile(0.9)), fdur(h.Quantile(0.99)), fdur(h.Quantile(0.999)),
			fmt.Sprint(res.Rcodes[2]), fmt.Sprint(res.Timeouts), per(0), per(1), per(2))
		fmt.Printf("   mixed %-22s p50 %-8s p99 %-8s servfail %d timeouts %d\n", c.name, fdur(h.Quantile(0.5)),
			fdur(h.Quantile(0.99)), res.Rcodes[2], res.Timeouts)
		p99[ci], profs[ci] = h.Quantile(0.99), file
	}
	ratio := float64(p99[1]) / float64(max(p99[0], 1))
	s.rep.ratioTarget("mixed DoQ/DoH/DoT, one stalling: racetls p99 vs forward random p99", "≤ 0.50×", ratio, 0.5, true,
		fdur(p99[1])+" vs "+fdur(p99[0]))
	if ratio > 0.5 {
		s.addProfile(profs[1], "racetls, mixed transports, misses")
	}
	return nil
}

// addProfile adds a captured profile's top to the report.
func (s *suite) addProfile(file, title string) {
	if file == "" {
		return
	}
	top, err := pprofTop(s.coredns, file, 14)
	if err != nil {
		s.rep.errorf("profile %s: %v", file, err)
		return
	}
	s.rep.profs = append(s.rep.profs, profile{title: title, file: filepath.Base(file), top: top})
}

// linkCost: target (c), connections and handshakes per 10k client queries per transport.
func (s *suite) linkCost(ctx context.Context) error {
	rate := pick(s, 400.0, 500.0)
	count := pick(s, 400, 2000)
	t := s.rep.table("8. Upstream connections and handshakes per 10k client queries, per transport",
		fmt.Sprintf("One lab upstream per case (2 ms fixed), unique names at %.0f qps, %d per case; counted by the upstream from before "+
			"the server's start (racetls dials then) to the end. dns://: UDP, no connections.", rate, count),
		"transport", "forwarder", "connections / 10k", "full hs / 10k", "resumed hs / 10k", "p50", "p99", "SERVFAIL", "timeouts")
	per := map[string]float64{} // racetls connections + handshakes per 10k, by scheme
	for i, scheme := range []string{"dns", "tls", "quic", "https"} {
		labs, err := s.startLabs(labFor(scheme, lab.Latency{Dist: lab.Fixed, Median: 2 * time.Millisecond}, uint64(41+i)))
		if err != nil {
			return err
		}
		fw, rt := s.upstreams([]string{scheme}, []string{labAddr(labs[0], scheme)}, nil, nil)
		for j, c := range []struct {
			name string
			c    chain
		}{{"forward", chain{cache: "cache 3600", upstream: fw}}, {"racetls", chain{cache: "warmcache", upstream: rt}}} {
			res, up, _, err := s.linkRun(ctx, c.c, labs, fmt.Sprintf("c%d%d", i, j), rate, count, "")
			if err != nil {
				labs.close()
				return fmt.Errorf("%s %s: %w", scheme, c.name, err)
			}
			k := func(n int64) float64 { return float64(n) * 10000 / float64(max(res.Sent, 1)) }
			u := up[0]
			h := &res.Latency
			t.add(scheme+"://", c.name, fmt.Sprintf("%.1f", k(u.Conns)), fmt.Sprintf("%.1f", k(u.Handshakes-u.Resumed)),
				fmt.Sprintf("%.1f", k(u.Resumed)), fdur(h.Quantile(0.5)), fdur(h.Quantile(0.99)),
				fmt.Sprint(res.Rcodes[2]), fmt.Sprint(res.Timeouts))
			fmt.Printf("   cost %-6s %-8s %d conns, %d full + %d resumed handshakes for %d queries\n", scheme, c.name,
				u.Conns, u.Handshakes-u.Resumed, u.Resumed, res.Sent)
			if c.name == "racetls" {
				per[scheme] = k(u.Conns) + k(u.Handshakes)
			}
		}
		labs.close()
	}
	detail := fmt.Sprintf("DoH %.1f vs DoT %.1f connections + handshakes per 10k (racetls; DoQ %.1f)", per["https"], per["tls"], per["quic"])
	status := "NOT met"
	if per["https"] <= per["tls"] {
		status = "met"
	}
	s.rep.target("racetls upstream connections + handshakes per 10k, DoH vs DoT", "DoH ≤ DoT", detail, status)
	return nil
}

// lossyUpstream is bin/coredns in the far namespace: DoT and DoQ server blocks on the far
// address, answering every A query at once (template).
const lossyUpstream = `{{define "body"}} {
    bind {{.Far}}
    tls {{.Cert}} {{.Key}}
    template IN A {
        answer "{{"{{ .Name }}"}} 60 IN A 192.0.2.53"
    }
    template IN NS {
        rcode NOERROR
    }
}
{{end}}tls://.:853{{template "body" .}}quic://.:853{{template "body" .}}`

type lossyServer struct {
	*kit.CoreDNS
	Far string
}

// linkLossy: target (b), DoQ against DoT across a link losing 2 % of packets each way.
func (s *suite) linkLossy(ctx context.Context) error {
	if os.Geteuid() != 0 {
		s.rep.target("DoQ p99 vs DoT p99 across 2 % loss", "≤ 0.70×", "-", "n/a (network namespaces need root)")
		return nil
	}
	const loss, delay = 0.02, 10 * time.Millisecond
	l, err := lossy.Start(lossy.Config{Loss: loss, Delay: delay, Jitter: time.Millisecond, Seed: 5})
	if err != nil {
		s.rep.target("DoQ p99 vs DoT p99 across 2 % loss", "≤ 0.70×", "-", "n/a ("+err.Error()+")")
		return nil
	}
	defer l.Close()
	// The upstream in far, on the load core.
	up, err := kit.NewCoreDNS("")
	if err != nil {
		return err
	}
	up.Bin = s.coredns
	up.Wrap = l.Far.Wrap()
	if s.clientCPU != "" {
		up.Wrap = append(up.Wrap, "taskset", "-c", s.clientCPU)
	}
	if err := s.ca.WriteFiles(up.Dir); err != nil {
		return err
	}
	if err := up.Launch(lossyUpstream, &lossyServer{CoreDNS: up, Far: l.FarIP}); err != nil {
		os.RemoveAll(up.Dir)
		return fmt.Errorf("upstream: %w", err)
	}
	defer func() { up.Process.Stop(10 * time.Second); os.RemoveAll(up.Dir) }()

	// Enough queries in flight on a connection for a lost segment to hold others up on TCP.
	rate := pick(s, 800.0, 1000.0)
	count := pick(s, 2400, 6000)
	t := s.rep.table(fmt.Sprintf("9. DoQ vs DoT across a lossy link: %.0f %% loss each way, %v ± 1 ms one-way delay", loss*100, delay),
		fmt.Sprintf("test/lossy: two network namespaces joined by TUN devices and a Go forwarder (no netem). "+
			"bin/coredns's own tls:// and quic:// server blocks in the far namespace; the forwarder under test in the near one, "+
			"driven over its unixsock socket at %.0f qps, %d unique names per case; one upstream. Link: packets dropped / crossed.", rate, count),
		"transport", "forwarder", "p50", "p90", "p99", "p99.9", "SERVFAIL", "timeouts", "link drops")
	p99 := map[string]time.Duration{}
	profs := map[string]string{}
	for i, scheme := range []string{"tls", "quic"} {
		fw, rt := s.upstreams([]string{scheme}, []string{l.FarIP + ":853"}, nil, nil)
		for j, c := range []struct {
			name, dir string
		}{{"forward", fw}, {"racetls", rt}} {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			f0, n0 := l.Stats()
			res, prof, err := s.lossyRun(ctx, l, c.name, c.dir, fmt.Sprintf("l%d%d", i, j), rate, count,
				!s.quick && c.name == "racetls")
			if err != nil {
				return fmt.Errorf("%s %s: %w", scheme, c.name, err)
			}
			f1, n1 := l.Stats()
			drops := (f1.Dropped - f0.Dropped) + (n1.Dropped - n0.Dropped)
			crossed := (f1.Packets - f0.Packets) + (n1.Packets - n0.Packets)
			h := &res.Latency
			t.add(scheme+"://", c.name, fdur(h.Quantile(0.5)), fdur(h.Quantile(0.9)), fdur(h.Quantile(0.99)),
				fdur(h.Quantile(0.999)), fmt.Sprint(res.Rcodes[2]), fmt.Sprint(res.Timeouts), fmt.Sprintf("%d / %d", drops, crossed))
			fmt.Printf("   lossy %-5s %-8s p50 %-8s p99 %-8s p99.9 %-8s servfail %d timeouts %d, %d of %d packets dropped\n",
				scheme, c.name, fdur(h.Quantile(0.5)), fdur(h.Quantile(0.99)), fdur(h.Quantile(0.999)), res.Rcodes[2], res.Timeouts, drops, crossed)
			p99[scheme+" "+c.name] = h.Quantile(0.99)
			profs[scheme+" "+c.name] = prof
		}
	}
	for _, fwd := range []string{"racetls", "forward"} {
		q, d := p99["quic "+fwd], p99["tls "+fwd]
		ratio := float64(q) / float64(max(d, 1))
		s.rep.ratioTarget(fmt.Sprintf("%s: DoQ p99 vs DoT p99 across 2 %% loss", fwd), "≤ 0.70×", ratio, 0.7, true, fdur(q)+" vs "+fdur(d))
		if fwd == "racetls" && ratio > 0.7 {
			s.addProfile(profs["quic racetls"], "racetls, DoQ across the lossy link")
			s.addProfile(profs["tls racetls"], "racetls, DoT across the lossy link")
		}
	}
	return nil
}

// lossyRun runs a forwarder (directive dir) in the near namespace and drives it over its
// unixsock socket; with profile, a CPU profile is fetched through a socket in the namespace.
func (s *suite) lossyRun(ctx context.Context, l *lossy.Link, name, dir, prefix string, rate float64, count int,
	profile bool) (*kit.Result, string, error) {
	srv, err := s.newServer("lossy-" + name)
	if err != nil {
		return nil, "", err
	}
	srv.Wrap = append(l.Near.Wrap(), srv.Wrap...) // ip netns exec NEAR taskset -c 0 coredns
	cache := "cache 3600"
	if name == "racetls" {
		cache = "warmcache"
	}
	// No ready plugin: its port would be in the namespace; Launch waits for the banner.
	corefile := ".:{{.Port}} {\n    bind 127.0.0.1\n    pprof {{.Pprof}}\n    unixsock {{.Sock}}\n    " + cache + "\n    " +
		strings.ReplaceAll(dir, "\n", "\n    ") + "\n}\n"
	if err := srv.Launch(corefile, srv); err != nil {
		os.RemoveAll(srv.Dir)
		return nil, "", err
	}
	defer srv.stop()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(srv.Sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, "", fmt.Errorf("no socket %s:\n%s", srv.Sock, srv.Log())
		}
	}
	time.Sleep(500 * time.Millisecond) // racetls dials at start-up; forward on the first query
	dur := time.Duration(float64(count) / rate * float64(time.Second))
	file := ""
	var done chan error
	if profile {
		file = filepath.Join(s.out, "link-lossy-"+prefix+".pprof")
		done = make(chan error, 1)
		go func() { done <- fetchProfileIn(l.Near, srv.Pprof, max(dur-time.Second, time.Second), file) }()
	}
	res, err := kit.Load{
		Network: "unix", Addr: srv.Sock, Conns: 2, InFlight: 256, Rate: rate, Count: count,
		Duration: dur + 5*time.Second, Timeout: 5 * time.Second,
		Next: func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("%s-%d.example.", prefix, i)} },
	}.Run(ctx)
	if done != nil {
		if perr := <-done; perr != nil {
			s.rep.errorf("profile %s: %v", file, perr)
			file = ""
		}
	}
	return res, file, err
}

// fetchProfileIn fetches a CPU profile from a pprof endpoint inside the namespace.
func fetchProfileIn(ns *lossy.Netns, addr string, d time.Duration, file string) error {
	cl := &http.Client{Transport: &http.Transport{
		DialContext: func(_ context.Context, network, a string) (net.Conn, error) { return ns.Dial(network, a) },
	}}
	resp, err := cl.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
