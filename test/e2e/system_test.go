package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
)

// systemCorefile is the product's chain: unixsock, log, prometheus, warmcache and racetls to
// three lab DoT upstreams.
const systemCorefile = `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    unixsock {{.Sock}}
    log . "{proto} {type} {name} {rcode}"
    warmcache
    racetls . %s {
        tls {{.CA}}
        tls_servername %s
        stats 1s
    }
}
`

// TestSystemSharedChain checks that the socket and UDP share one chain: a name cached by a UDP
// client is a hit for a socket client and the reverse; log and prometheus, placed before
// warmcache, see the right rcode for raw hits; the racetls stats table reaches the log.
func TestSystemSharedChain(t *testing.T) {
	kit.CheckFDs(t)
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	var tos []string
	var ups []*lab.Upstream
	for _, ms := range []int{2, 10, 30} {
		u := lab.StartTest(t, lab.Config{CA: ca, Latency: lab.Latency{Dist: lab.Fixed, Median: time.Duration(ms) * time.Millisecond}})
		ups = append(ups, u)
		tos = append(tos, "tls://"+u.TLSAddr())
	}
	s := kit.Prepare(t)
	if err := ca.WriteFiles(s.Dir); err != nil {
		t.Fatal(err)
	}
	s.Run(t, fmt.Sprintf(systemCorefile, strings.Join(tos, " "), ca.Names()[0]))
	// racetls asks up to 2 upstreams per miss (race 2); a hit asks none.
	upstream := func(name string) (n int64) {
		for _, u := range ups {
			n += u.Count(name)
		}
		return n
	}
	ask := func(name string) *dns.Msg {
		c := unixsockDial(t, s.Sock)
		defer c.Close()
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		unixsockSend(t, c, q)
		return unixsockRecv(t, c)
	}

	// UDP first, then the socket: one upstream query.
	m := new(dns.Msg)
	m.SetQuestion("Shared.Example.ORG.", dns.TypeA)
	r := s.Exchange(t, m, "udp")
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("udp: %v", r)
	}
	misses := upstream("shared.example.org.")
	r = ask("sHARED.example.org.")
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Question[0].Name != "sHARED.example.org." {
		t.Fatalf("socket: %v", r)
	}
	if a := r.Answer[0].(*dns.A); !a.A.Equal(lab.AddrA("shared.example.org.")) {
		t.Errorf("socket answer %v, want %v", a.A, lab.AddrA("shared.example.org."))
	}
	if n := upstream("shared.example.org."); n != misses || n == 0 || n > 2 {
		t.Errorf("upstream queries for shared.example.org. = %d after the socket query, %d before: the socket must hit the UDP client's entry", n, misses)
	}

	// The socket first, then UDP, for a negative answer: the hit must be counted as NXDOMAIN.
	r = ask("nx-shared.example.org.")
	if r.Rcode != dns.RcodeNameError {
		t.Fatalf("socket nx: %v", r)
	}
	nx := new(dns.Msg)
	nx.SetQuestion("nx-shared.example.org.", dns.TypeA)
	for range 3 {
		if r := s.Exchange(t, nx, "udp"); r.Rcode != dns.RcodeNameError {
			t.Fatalf("udp nx: %v", r)
		}
	}
	if n := upstream("nx-shared.example.org."); n == 0 || n > 2 {
		t.Errorf("upstream queries for nx-shared.example.org. = %d, want 1 or 2 (one race)", n)
	}
	if n := s.Metric(t, "coredns_warmcache_misses_total", nil); n != 2 {
		t.Errorf("coredns_warmcache_misses_total = %v, want 2", n)
	}
	if n := s.Metric(t, "coredns_warmcache_hits_total", nil); n < 4 {
		t.Errorf("coredns_warmcache_hits_total = %v, want >= 4", n)
	}
	// prometheus sits before warmcache: the three UDP hits are NXDOMAIN, not NOERROR.
	if n := s.Metric(t, "coredns_dns_responses_total", map[string]string{"rcode": "NXDOMAIN", "server": "dns://127.0.0.1:" + fmt.Sprint(s.Port)}); n != 3 {
		t.Errorf("coredns_dns_responses_total{rcode=NXDOMAIN} over UDP = %v, want 3", n)
	}
	if n := s.Metric(t, "coredns_unixsock_requests_total", nil); n != 2 {
		t.Errorf("coredns_unixsock_requests_total = %v, want 2", n)
	}
	if got := strings.Count(s.Log(), "udp A nx-shared.example.org. NXDOMAIN"); got != 3 {
		t.Errorf("log has %d NXDOMAIN lines for the UDP hits, want 3:\n%s", got, s.Log())
	}
	if got := strings.Count(s.Log(), "tcp A nx-shared.example.org. NXDOMAIN"); got != 1 {
		t.Errorf("log has %d NXDOMAIN lines for the socket query, want 1", got)
	}

	// racetls: queries counted per upstream, and the stats table printed.
	if n := s.Metric(t, "coredns_racetls_queries_total", nil); n < 2 {
		t.Errorf("coredns_racetls_queries_total = %v, want >= 2", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.Log(), ups[0].TLSAddr()) || !strings.Contains(s.Log(), "wins") {
		if time.Now().After(deadline) {
			t.Fatalf("no racetls stats table in the log:\n%s", s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Stop(t)
}
