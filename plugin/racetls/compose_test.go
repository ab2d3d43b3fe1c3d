package racetls

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coredns/caddy"
	_ "github.com/coredns/coredns/core" // the dns server type
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/plugin/acl"
	_ "github.com/coredns/coredns/plugin/dnstap"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/forward"
	"github.com/coredns/coredns/plugin/metadata"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	_ "github.com/coredns/coredns/plugin/ready"
	"github.com/coredns/coredns/plugin/test"
	_ "github.com/coredns/coredns/plugin/view"
	"github.com/dnscache/dnscache/test/lab"
	tap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
)

// The composition tests run racetls inside a real CoreDNS server (caddy, dnsserver and
// the stock plugins in this process), next to the same Corefile with forward, and
// compare. racetls takes forward's slot in the directive order, as build/plugin.cfg has it.
var directivesOnce sync.Once

func withRacetls() {
	directivesOnce.Do(func() {
		if slices.Contains(dnsserver.Directives, "racetls") {
			return
		}
		i := slices.Index(dnsserver.Directives, "forward")
		dnsserver.Directives = slices.Insert(dnsserver.Directives, i+1, "racetls")
	})
}

// serve starts corefile in this process and returns its UDP address.
func serve(t *testing.T, corefile string) string {
	t.Helper()
	withRacetls()
	caddy.Quiet, dnsserver.Quiet = true, true
	i, err := caddy.Start(corefileInput(corefile))
	if err != nil {
		t.Fatalf("start: %v\n%s", err, corefile)
	}
	t.Cleanup(func() { i.ShutdownCallbacks(); i.Stop(); i.Wait() })
	for _, s := range i.Servers() {
		// A plain DNS server has both a packet conn and a listener; DoQ and DoH one each.
		if a := s.LocalAddr(); a != nil && s.Addr() != nil {
			return a.String()
		}
	}
	return "" // no plain DNS server block
}

// corefileInput is a Corefile held in a string, as caddy.Input.
type corefileInput string

func (c corefileInput) Body() []byte       { return []byte(c) }
func (c corefileInput) Path() string       { return "Corefile" }
func (c corefileInput) ServerType() string { return "dns" }

// upstreamLines returns a forward and a racetls line to the lab upstream u (DoT).
func upstreamLines(ls *labSet, u *lab.Upstream) map[string]string {
	return map[string]string{
		"forward": fmt.Sprintf("forward . tls://%s {\n tls %s\n tls_servername %s\n }", u.TLSAddr(), ls.caPEM, lab.DefaultServerName),
		"racetls": fmt.Sprintf("racetls . tls://%s {\n tls %s\n tls_servername %s\n }", u.TLSAddr(), ls.caPEM, lab.DefaultServerName),
	}
}

func exchange(t *testing.T, addr, name string, qtype, qclass uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Question[0].Qclass = qclass
	c := &dns.Client{Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// TestComposeClass: a query of a class other than IN goes upstream through racetls as
// through forward, instead of being refused by the server.
func TestComposeClass(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	for _, fw := range []string{"forward", "racetls"} {
		t.Run(fw, func(t *testing.T) {
			addr := serve(t, ".:0 {\n "+upstreamLines(ls, ls.ups[0])[fw]+"\n}")
			name := "class-" + fw + ".example.com."
			r := exchange(t, addr, name, dns.TypeTXT, dns.ClassCHAOS)
			// The lab refuses classes other than IN itself: what matters is that it was asked.
			if n := ls.ups[0].Count(name); n != 1 {
				t.Errorf("%s CH TXT reached the upstream %d times (rcode %s), want 1", fw, n, dns.RcodeToString[r.Rcode])
			}
		})
	}
}

// TestComposeUpstreamReentry: file's out-of-zone CNAME is chased through the server
// again (pkg/upstream) and racetls answers the target, as forward does.
func TestComposeUpstreamReentry(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	dir := t.TempDir()
	zone := `$ORIGIN example.test.
@ 3600 IN SOA ns.example.test. admin.example.test. 1 3600 600 86400 60
@ 3600 IN NS ns.example.test.
ns 3600 IN A 192.0.2.1
alias 3600 IN CNAME www.other.test.
`
	if err := os.WriteFile(filepath.Join(dir, "db"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	answers := map[string][]string{}
	for _, fw := range []string{"forward", "racetls"} {
		addr := serve(t, fmt.Sprintf(".:0 {\n file %s example.test\n %s\n}", filepath.Join(dir, "db"), upstreamLines(ls, ls.ups[0])[fw]))
		r := exchange(t, addr, "alias.example.test.", dns.TypeA, dns.ClassINET)
		for _, rr := range r.Answer {
			answers[fw] = append(answers[fw], rr.Header().Name+" "+dns.TypeToString[rr.Header().Rrtype])
		}
	}
	if !slices.Equal(answers["forward"], answers["racetls"]) || len(answers["racetls"]) != 2 {
		t.Errorf("answers: forward %v, racetls %v; want the CNAME and the target's A from both", answers["forward"], answers["racetls"])
	}
}

// TestComposeViewACL: racetls in views routes each query to its view's upstream, and
// acl in front of it blocks what it blocks.
func TestComposeViewACL(t *testing.T) {
	ls := newLabs(t, lab.Config{}, lab.Config{})
	a, b := upstreamLines(ls, ls.ups[0])["racetls"], upstreamLines(ls, ls.ups[1])["racetls"]
	port := freeUDPTCPPort(t)
	addr := serve(t, fmt.Sprintf(`.:%d {
 view a {
  expr name() == 'v.view-a.test.'
 }
 %s
}
.:%d {
 acl {
  block type AAAA
 }
 %s
}`, port, a, port, b))
	exchange(t, addr, "v.view-a.test.", dns.TypeA, dns.ClassINET)
	exchange(t, addr, "v.view-b.test.", dns.TypeA, dns.ClassINET)
	r := exchange(t, addr, "v.blocked.test.", dns.TypeAAAA, dns.ClassINET)
	for _, c := range []struct {
		u    int
		name string
		want int64
	}{{0, "v.view-a.test.", 1}, {1, "v.view-a.test.", 0}, {0, "v.view-b.test.", 0}, {1, "v.view-b.test.", 1}, {1, "v.blocked.test.", 0}} {
		if n := ls.ups[c.u].Count(c.name); n != c.want {
			t.Errorf("upstream %d saw %s %d times, want %d", c.u, c.name, n, c.want)
		}
	}
	if r.Rcode != dns.RcodeRefused {
		t.Errorf("acl-blocked query: rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
}

// TestComposeDnstap: racetls sends FORWARDER_QUERY and FORWARDER_RESPONSE messages to the
// block's dnstap, with the upstream's address, as forward does: the same socket family and
// protocol, the query address this end of the upstream connection.
func TestComposeDnstap(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	addrs := map[string][]string{} // per plugin: each FORWARDER message's addresses
	for _, fw := range []string{"forward", "racetls"} {
		t.Run(fw, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "tap.sock")
			frames := listenDnstap(t, sock)
			addr := serve(t, fmt.Sprintf(".:0 {\n dnstap unix://%s full\n %s\n}", sock, upstreamLines(ls, ls.ups[0])[fw]))
			exchange(t, addr, "tap-"+fw+".example.com.", dns.TypeA, dns.ClassINET)
			seen := map[tap.Message_Type]int{}
			end := time.After(5 * time.Second)
			for seen[tap.Message_FORWARDER_RESPONSE] == 0 || seen[tap.Message_CLIENT_RESPONSE] == 0 {
				select {
				case f := <-frames:
					d := new(tap.Dnstap)
					if err := proto.Unmarshal(f, d); err != nil {
						t.Fatal(err)
					}
					m := d.GetMessage()
					seen[m.GetType()]++
					if typ := m.GetType(); typ == tap.Message_FORWARDER_QUERY || typ == tap.Message_FORWARDER_RESPONSE {
						// The local port differs between processes' connections, the rest not.
						addrs[fw] = append(addrs[fw], fmt.Sprintf("%s %s/%s query=%v response=%v:%d", typ,
							m.GetSocketFamily(), m.GetSocketProtocol(), net.IP(m.GetQueryAddress()), net.IP(m.GetResponseAddress()), m.GetResponsePort()))
					}
					if m.GetType() == tap.Message_FORWARDER_QUERY {
						got := net.JoinHostPort(net.IP(m.GetResponseAddress()).String(), fmt.Sprint(m.GetResponsePort()))
						if got != ls.ups[0].TLSAddr() || len(m.GetQueryMessage()) == 0 {
							t.Errorf("FORWARDER_QUERY to %s with %d query bytes, want %s and the query", got, len(m.GetQueryMessage()), ls.ups[0].TLSAddr())
						}
					}
				case <-end:
					t.Fatalf("dnstap messages seen: %v; want FORWARDER_QUERY and FORWARDER_RESPONSE", seen)
				}
			}
			if seen[tap.Message_FORWARDER_QUERY] != 1 {
				t.Errorf("dnstap messages: %v", seen)
			}
		})
	}
	if !slices.Equal(addrs["forward"], addrs["racetls"]) {
		t.Errorf("FORWARDER messages:\nforward %q\nracetls %q", addrs["forward"], addrs["racetls"])
	}
}

// listenDnstap accepts dnstap frame streams on a Unix socket until the test ends.
func listenDnstap(t *testing.T, path string) <-chan []byte {
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan []byte, 64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			in, err := tap.NewFrameStreamInputTimeout(c, true, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); in.ReadInto(out) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return out
}

// TestComposeReady: /ready turns green only once an upstream answered; with a wrong
// certificate name it stays red.
func TestComposeReady(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	for _, c := range []struct {
		name  string
		ready bool
	}{{lab.DefaultServerName, true}, {"wrong.example", false}} {
		t.Run(c.name, func(t *testing.T) {
			port := freeUDPTCPPort(t)
			serve(t, fmt.Sprintf(".:0 {\n ready 127.0.0.1:%d\n racetls . tls://%s {\n tls %s\n tls_servername %s\n }\n}", port, ls.ups[0].TLSAddr(), ls.caPEM, c.name))
			url := fmt.Sprintf("http://127.0.0.1:%d/ready", port)
			get := func() int {
				resp, err := http.Get(url)
				if err != nil {
					return 0
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if c.ready {
				waitFor(t, "/ready 200", func() bool { return get() == http.StatusOK })
				return
			}
			// Three dials have failed their handshake.
			waitFor(t, "failed dials", func() bool { return ls.ups[0].Stats().Conns >= 3 && get() != 0 })
			if s := get(); s != http.StatusServiceUnavailable {
				t.Errorf("/ready with a wrong certificate name: %d, want 503", s)
			}
		})
	}
}

// TestReadyUnit: Ready reports false until an upstream answered.
func TestReadyUnit(t *testing.T) {
	ls := newLabs(t, lab.Config{Fault: lab.Fault{Kind: lab.BlackHole}})
	rt := startRT(t, ls.corefile("timeout 300ms"))
	if rt.Ready() {
		t.Fatal("ready with an upstream that never answered")
	}
	ls.ups[0].SetFault(lab.Fault{})
	waitFor(t, "ready once the upstream answers", rt.Ready)
}

// TestMetricsServerFromRequest: a query counts under the server label of its request
// (a query that came over the socket is unix://...), not the block's, and only there.
func TestMetricsServerFromRequest(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	rt := startRT(t, ls.corefile(""))
	cfg := &dnsserver.Config{Zone: ".", Transport: "dns", ListenHosts: []string{""}, Port: "53"}
	srv, err := dnsserver.NewServer("unix:///run/test-"+t.Name()+".sock", []*dnsserver.Config{cfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), dnsserver.Key{}, srv)
	m := new(dns.Msg)
	m.SetQuestion("label.example.com.", dns.TypeA)
	if _, err := rt.ServeDNS(ctx, dnstest.NewRecorder(&test.ResponseWriter{}), m); err != nil {
		t.Fatal(err)
	}
	u := rt.upstreams[0]
	waitFor(t, "the reply counted", func() bool { return counterValue(queryCount, srv.Addr, u.name, "tls") == 1 })
	if n := counterValue(queryCount, rt.server, u.name, "tls"); n != 0 {
		t.Errorf("queries under the block's label %s: %v, want 0", rt.server, n)
	}
	if n := counterValue(winCount, srv.Addr, u.name, "tls"); n != 1 {
		t.Errorf("wins under %s: %v, want 1", srv.Addr, n)
	}
	if n := u.tally.queries.Load(); n != 1 {
		t.Errorf("stats table queries: %d, want 1 (each event counted once)", n)
	}
}

// TestStatsOff: without stats the table's tally does not exist, so a reply does no work
// for it; with stats it counts.
func TestStatsOff(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	for _, c := range []struct {
		body string
		on   bool
	}{{"", false}, {"stats 1h", true}} {
		rt, err := parse(caddy.NewTestController("dns", ls.corefile(c.body)))
		if err != nil {
			t.Fatal(err)
		}
		rt.Next = test.ErrorHandler()
		rt.server = "statsoff://" + c.body
		if err := rt.OnStartup(); err != nil {
			t.Fatal(err)
		}
		mustNoError(t, rt, "stats.example.com.")
		u := rt.upstreams[0]
		if (u.tally != nil) != c.on || (u.ctr.t != nil) != c.on {
			t.Errorf("%q: tally present %v, want %v", c.body, u.tally != nil, c.on)
		}
		if c.on && u.tally.queries.Load() != 1 {
			t.Errorf("%q: tally counted %d queries, want 1", c.body, u.tally.queries.Load())
		}
		rt.OnShutdown()
	}
}

// TestMetadataUpstream: the winning upstream is published as racetls/upstream.
func TestMetadataUpstream(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	rt := startRT(t, ls.corefile(""))
	ctx := metadata.ContextWithMetadata(context.Background())
	m := new(dns.Msg)
	m.SetQuestion("meta.example.com.", dns.TypeA)
	if _, err := rt.ServeDNS(ctx, dnstest.NewRecorder(&test.ResponseWriter{}), m); err != nil {
		t.Fatal(err)
	}
	f := metadata.ValueFunc(ctx, "racetls/upstream")
	if f == nil || f() != rt.upstreams[0].name {
		t.Errorf("racetls/upstream metadata: %v", f)
	}
}

func counterValue(v *prometheus.CounterVec, labels ...string) float64 {
	return testutil.ToFloat64(v.WithLabelValues(labels...))
}

// freeUDPTCPPort returns a loopback port that is free for UDP and TCP.
func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}
