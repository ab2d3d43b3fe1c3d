package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
)

// startLabs starts lab DoT upstreams sharing ca; the test's cleanup closes them.
func startLabs(t *testing.T, ca *lab.CA, cfgs ...lab.Config) []*lab.Upstream {
	t.Helper()
	var ups []*lab.Upstream
	for _, cfg := range cfgs {
		cfg.CA = ca
		u, err := lab.Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		ups = append(ups, u)
	}
	return ups
}

func labLatency(d time.Duration) lab.Latency { return lab.Latency{Dist: lab.Fixed, Median: d} }

// askAll sends n A queries for <i>.<zone> over UDP, ten at a time, and
// returns how many did not come back NOERROR with an answer.
func askAll(t *testing.T, s *kit.CoreDNS, zone string, n int) (failed int) {
	t.Helper()
	var mu sync.Mutex
	sem := make(chan struct{}, 10)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m := new(dns.Msg)
			m.SetQuestion(fmt.Sprintf("q%d.%s", i, zone), dns.TypeA)
			c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
			r, _, err := c.Exchange(m, s.DNS)
			if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
				mu.Lock()
				failed++
				mu.Unlock()
				t.Logf("%s: %v %v", m.Question[0].Name, err, r)
			}
		}()
	}
	wg.Wait()
	return failed
}

// TestRacetlsLabDoT: bin/coredns races three lab DoT upstreams at 5, 20 and
// 50 ms; kdig gets answers, the 5 ms upstream wins, and /metrics shows every
// racetls metric.
func TestRacetlsLabDoT(t *testing.T) {
	kit.CheckFDs(t)
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	ups := startLabs(t, ca, lab.Config{Latency: labLatency(5 * time.Millisecond)},
		lab.Config{Latency: labLatency(20 * time.Millisecond)}, lab.Config{Latency: labLatency(50 * time.Millisecond)})
	s := kit.Prepare(t)
	if err := ca.WriteFiles(s.Dir); err != nil {
		t.Fatal(err)
	}
	s.Run(t, fmt.Sprintf(`.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    racetls . tls://%s%%%s tls://%s%%%s tls://%s%%%s {
        tls {{.CA}}
        race all
        stats 500ms
    }
}
`, ups[0].TLSAddr(), lab.DefaultServerName, ups[1].TLSAddr(), lab.DefaultServerName, ups[2].TLSAddr(), lab.DefaultServerName))

	out := s.Kdig(t, "www.example.com", "A")
	if !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, lab.AddrA("www.example.com.").String()) {
		t.Fatalf("kdig A over UDP:\n%s", out)
	}
	out = s.Kdig(t, "+tcp", "nx-gone.example.com", "AAAA")
	if !strings.Contains(out, "status: NXDOMAIN") {
		t.Fatalf("kdig AAAA over TCP:\n%s", out)
	}
	if failed := askAll(t, s, "example.com.", 100); failed > 0 {
		t.Errorf("%d of 100 queries failed", failed)
	}

	to := func(u *lab.Upstream) map[string]string { return map[string]string{"to": "tls://" + u.TLSAddr()} }
	// The 50 ms upstream's replies to the last queries are still on their way.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if s.Metric(t, "coredns_racetls_reply_duration_seconds", to(ups[2])) >= 102 {
			break
		}
	}
	fams := s.Scrape(t)
	for _, name := range []string{"queries_total", "wins_total", "late_replies_total", "reply_duration_seconds", "handshakes_total", "inflight", "conns"} {
		if _, ok := fams["coredns_racetls_"+name]; !ok {
			t.Errorf("/metrics lacks coredns_racetls_%s", name)
		}
	}
	wins := [3]float64{}
	for i, u := range ups {
		wins[i] = kit.Sum(fams, "coredns_racetls_wins_total", to(u))
		if q := kit.Sum(fams, "coredns_racetls_queries_total", to(u)); q < 102 {
			t.Errorf("upstream %d: queries_total %v, want >= 102 (race all)", i, q)
		}
		if c := kit.Sum(fams, "coredns_racetls_conns", to(u)); c < 2 || c > 4 {
			t.Errorf("upstream %d: conns %v", i, c)
		}
		if st := u.Stats(); st.Conns > 4 {
			t.Errorf("upstream %d: lab accepted %d connections", i, st.Conns)
		}
	}
	if wins[0] <= wins[1]+wins[2] {
		t.Errorf("wins 5/20/50 ms = %v, want most for the 5 ms upstream", wins)
	}
	if late := kit.Sum(fams, "coredns_racetls_late_replies_total", to(ups[2])); late == 0 {
		t.Error("no late replies counted for the 50 ms upstream")
	}
	if d := kit.Sum(fams, "coredns_racetls_reply_duration_seconds", to(ups[2])); d < 102 {
		t.Errorf("reply_duration_seconds count %v for the 50 ms upstream: losers' replies must count", d)
	}
	time.Sleep(600 * time.Millisecond)
	if log := s.Log(); !strings.Contains(log, "win%") || !strings.Contains(log, "tls://"+ups[0].TLSAddr()) {
		t.Errorf("no stats table in the log:\n%s", log)
	}
	s.Stop(t)
}

// TestRacetlsFaults: one bin/coredns with a server block per fault; in each,
// racetls asks the faulty (and faster) upstream first, with a healthy one
// behind it. Clients see no failure.
func TestRacetlsFaults(t *testing.T) {
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	healthy := startLabs(t, ca, lab.Config{Latency: labLatency(5 * time.Millisecond)})[0]
	faults := map[string]lab.Fault{
		"idleclose": {Kind: lab.IdleClose, After: time.Second},
		"reset":     {Kind: lab.Reset, Prob: 0.5},
		"blackhole": {Kind: lab.BlackHole},
		"garbage":   {Kind: lab.Garbage},
		"wrongid":   {Kind: lab.WrongID},
		"servfail":  {Kind: lab.ServFail},
		"down":      {},
	}
	faulty := map[string]*lab.Upstream{}
	s := kit.Prepare(t)
	if err := ca.WriteFiles(s.Dir); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for zone, f := range faults {
		u := startLabs(t, ca, lab.Config{Latency: labLatency(time.Millisecond), Fault: f})[0]
		faulty[zone] = u
		if zone == "down" {
			u.Down()
		}
		fmt.Fprintf(&b, `%s.:{{.Port}} {
    bind 127.0.0.1
    racetls . tls://%s tls://%s {
        tls {{.CA}}
        tls_servername %s
        race 1
    }
}
`, zone, u.TLSAddr(), healthy.TLSAddr(), lab.DefaultServerName)
	}
	s.Run(t, b.String()+".:{{.Port}} {\n    bind 127.0.0.1\n    {{.Std}}\n    whoami\n}\n")

	// Bounded runs: three bursts per fault, with idle gaps longer than the idle close.
	for round := range 3 {
		for zone := range faults {
			if failed := askAll(t, s, fmt.Sprintf("r%d.%s.", round, zone), 20); failed > 0 {
				t.Errorf("%s: %d of 20 queries failed\n%s", zone, failed, s.Log())
			}
		}
		if round == 1 {
			if err := faulty["down"].Up(); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(1200 * time.Millisecond)
	}
	for zone, u := range faulty {
		if u.Stats().Queries == 0 {
			t.Errorf("%s: the faulty upstream was never asked", zone)
		}
	}
	// Back up, the once-down upstream answers again and wins (it is the faster).
	if failed := askAll(t, s, "back.down.", 20); failed > 0 {
		t.Errorf("down: %d of 20 failed after it came back", failed)
	}
	if n := s.Metric(t, "coredns_racetls_wins_total", map[string]string{"to": "tls://" + faulty["down"].TLSAddr()}); n == 0 {
		t.Errorf("the upstream that came back won nothing")
	}
	if n := s.Metric(t, "coredns_racetls_handshakes_total", map[string]string{"to": "tls://" + faulty["idleclose"].TLSAddr(), "resumed": "true"}); n == 0 {
		t.Errorf("no resumed handshake after idle closes")
	}
	if n := s.Metric(t, "coredns_racetls_reconnects_total", map[string]string{"to": "tls://" + faulty["idleclose"].TLSAddr()}); n == 0 {
		t.Errorf("no reconnect after idle closes")
	}
	s.Stop(t)
}

// TestRacetlsUnbound: racetls against Debian's unbound serving DoT (TLS 1.3,
// the default minimum) with the lab CA. unbound announces a 1.5 s idle timeout
// with edns-tcp-keepalive (RFC 7828); racetls keeps its connections open
// across idle time with probes.
func TestRacetlsUnbound(t *testing.T) {
	kit.CheckFDs(t)
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	up := startLabs(t, ca, lab.Config{})[0]
	ub := lab.StartUnbound(t, lab.UnboundConfig{CA: ca, Upstream: up,
		Extra: "\tedns-tcp-keepalive: yes\n\tedns-tcp-keepalive-timeout: 1500\n\ttcp-idle-timeout: 1500\n"})
	s := kit.Prepare(t)
	if err := ca.WriteFiles(s.Dir); err != nil {
		t.Fatal(err)
	}
	s.Run(t, `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    racetls . tls://`+ub.TLSAddr()+`%`+ca.Names()[0]+` {
        tls {{.CA}}
    }
}
`)
	out := s.Kdig(t, "www.example.com", "A")
	if !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, lab.AddrA("www.example.com.").String()) {
		t.Fatalf("kdig A:\n%s", out)
	}
	out = s.Kdig(t, "+tcp", "nx-gone.example.com", "AAAA")
	if !strings.Contains(out, "status: NXDOMAIN") {
		t.Fatalf("kdig NXDOMAIN:\n%s", out)
	}
	if failed := askAll(t, s, "ub.example.com.", 50); failed > 0 {
		t.Errorf("%d of 50 queries through unbound failed", failed)
	}
	to := map[string]string{"to": "tls://" + ub.TLSAddr()}
	if n := s.Metric(t, "coredns_racetls_wins_total", to); n < 52 {
		t.Errorf("wins_total %v, want >= 52", n)
	}
	if n := s.Metric(t, "coredns_racetls_conns", to); n != 2 {
		t.Errorf("conns %v, want 2 (all queries pipelined)", n)
	}
	time.Sleep(3500 * time.Millisecond)
	if n := s.Metric(t, "coredns_racetls_reconnects_total", to); n != 0 {
		t.Errorf("%v reconnects across 3.5 s idle: keepalive probes did not keep the connections", n)
	}
	if failed := askAll(t, s, "after-idle.example.com.", 10); failed > 0 {
		t.Errorf("%d of 10 failed after idle time", failed)
	}
	t.Logf("handshakes resumed=%v full=%v", s.Metric(t, "coredns_racetls_handshakes_total", map[string]string{"to": to["to"], "resumed": "true"}),
		s.Metric(t, "coredns_racetls_handshakes_total", map[string]string{"to": to["to"], "resumed": "false"}))
	s.Stop(t)
}
