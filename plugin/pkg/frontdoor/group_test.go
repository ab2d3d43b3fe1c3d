package frontdoor_test

import (
	"context"
	"net"
	"strconv"

	"testing"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics/vars"
	"github.com/coredns/coredns/plugin/pkg/reuseport"
	"github.com/coredns/coredns/plugin/test"
	"github.com/dnscache/dnscache/plugin/pkg/frontdoor"
	"github.com/dnscache/dnscache/plugin/warmcache"
	"github.com/dnscache/dnscache/test/kit"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// cache returns a warmcache holding one entry, hit.test. A 192.0.2.1.
func cache(t *testing.T) *warmcache.WarmCache {
	t.Helper()
	c := warmcache.New()
	c.Next = plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		answer("192.0.2.1")(w, r)
		return dns.RcodeSuccess, nil
	})
	m := new(dns.Msg)
	m.SetQuestion("hit.test.", dns.TypeA)
	if _, err := c.ServeDNS(context.Background(), &test.ResponseWriter{}, m); err != nil {
		t.Fatal(err)
	}
	return c
}

// answer is a handler answering every query with A addr.
func answer(addr string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(addr)}}
		w.WriteMsg(m)
	}
}

// coreServer stands for the block's server: a dnsserver.Server whose chain answers 192.0.2.3.
func coreServer(t *testing.T, addr string) *dnsserver.Server {
	t.Helper()
	h := plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		answer("192.0.2.3")(w, r)
		return dns.RcodeSuccess, nil
	})
	_, port, _ := net.SplitHostPort(addr)
	cfg := &dnsserver.Config{Zone: ".", Port: port, Transport: "dns", ListenHosts: []string{"127.0.0.1"},
		Plugin: []plugin.Plugin{func(plugin.Handler) plugin.Handler { return h }}}
	s, err := dnsserver.NewServer("dns://"+addr, []*dnsserver.Config{cfg})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// who asks n times for name and counts the answers by address.
func who(t *testing.T, addr, name string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	for range n {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, _, err := c.Exchange(m, addr)
		if err != nil {
			seen["error"]++
			continue
		}
		if len(r.Answer) != 1 {
			seen["empty"]++
			continue
		}
		seen[r.Answer[0].(*dns.A).A.String()]++
	}
	return seen
}

// TestGroupSteersAndFallsBack: before Serve every datagram goes to the socket bound after
// ours (CoreDNS's); after, every one to ours; once ours close, every one to CoreDNS's again.
func TestGroupSteersAndFallsBack(t *testing.T) {
	addr := kit.FreeAddr(t)
	g, err := frontdoor.Open(addr, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// CoreDNS binds its socket after ours, with SO_REUSEPORT (plugin/pkg/reuseport).
	pc, err := reuseport.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	core := &dns.Server{PacketConn: pc, Handler: answer("192.0.2.2")}
	started := make(chan struct{})
	core.NotifyStartedFunc = func() { close(started) }
	go core.ActivateAndServe()
	<-started
	defer core.Shutdown()

	if got := who(t, addr, "hit.test.", 50); got["192.0.2.2"] != 50 {
		t.Fatalf("before Serve: %v, want all 50 from the server's socket", got)
	}
	if err := g.Serve(&frontdoor.Door{Cache: cache(t), Server: coreServer(t, addr), Label: "dns://" + addr}); err != nil {
		t.Fatal(err)
	}
	if got := who(t, addr, "hit.test.", 50); got["192.0.2.1"] != 50 {
		t.Fatalf("serving: %v, want all 50 hits from the front door", got)
	}
	if got := who(t, addr, "miss.test.", 20); got["192.0.2.3"] != 20 {
		t.Fatalf("misses: %v, want all 20 through the block's server", got)
	}
	g.Close()
	if got := who(t, addr, "hit.test.", 50); got["192.0.2.2"] != 50 {
		t.Fatalf("after Close: %v, want all 50 from the server's socket", got)
	}
}

// TestBadInputAsMiekg: datagrams that are not plain queries get from the front door what
// miekg/dns's server gives them (CoreDNS's UDP server): the same reply, or none.
func TestBadInputAsMiekg(t *testing.T) {
	addr := kit.FreeAddr(t)
	g, err := frontdoor.Open(addr, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Serve(&frontdoor.Door{Cache: cache(t), Server: coreServer(t, addr), Label: "dns://" + addr}); err != nil {
		t.Fatal(err)
	}
	// The reference: miekg/dns's server with the same chain, as CoreDNS runs it.
	ref := kit.FreeAddr(t)
	rs := coreServer(t, ref)
	pc, err := net.ListenPacket("udp", ref)
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		ctx := context.WithValue(context.Background(), dnsserver.Key{}, rs)
		rs.ServeDNS(ctx, w, r)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	defer srv.Shutdown()

	q := func(edit func(*dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("hit.test.", dns.TypeA)
		if edit != nil {
			edit(m)
		}
		b, _ := m.Pack()
		return b
	}
	padded := func(n int) []byte {
		return q(func(m *dns.Msg) {
			m.SetEdns0(4096, false)
			m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_PADDING{Padding: make([]byte, n)}}
		})
	}
	long := padded(600)
	// One byte over what the server reads: whole, it would unpack.
	over := padded(513 - len(padded(0)))
	// An answer that unpacks, then an authority record that does not: the FORMERR carries
	// neither.
	partial := q(func(m *dns.Msg) {
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "hit.test.", Rrtype: 1, Class: 1}, A: net.IPv4(192, 0, 2, 9)}}
	})
	partial[9] = 1
	partial = append(partial, 1, 'a')
	cases := map[string][]byte{
		"empty":            {},
		"short":            {0x12, 0x34, 1},
		"header only":      {0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0},
		"response":         q(func(m *dns.Msg) { m.Response = true }),
		"notify":           q(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }),
		"update":           q(func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }),
		"two questions":    q(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }),
		"truncated":        q(nil)[:20],
		"trailing":         append(q(nil), 1, 2, 3),
		"over 512 bytes":   long,
		"513 bytes":        over,
		"partial":          partial,
		"z, two questions": q(func(m *dns.Msg) { m.Zero = true; m.Question = append(m.Question, m.Question[0]) }),
		"bad label":        append(q(nil)[:12], 0x40, 'a', 0, 0, 1, 0, 1),
	}
	for name, b := range cases {
		got, want := raw(t, addr, b), raw(t, ref, b)
		if got != want {
			t.Errorf("%s: front door %q, miekg/dns %q", name, got, want)
		}
	}
}

// raw sends b and returns the reply with its ID zeroed, or "" after a short wait.
func raw(t *testing.T, addr string, b []byte) string {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(b)
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	m := new(dns.Msg)
	if m.Unpack(buf[:n]) != nil {
		return "undecodable " + strconv.Itoa(n)
	}
	m.Id = 0
	return m.String()
}

// TestWildcardAddress: on a socket bound to every address (CoreDNS's ":53", a dual-stack IPv6
// socket), replies to IPv4 and IPv6 clients leave from the address each query came to, and
// hits are counted in the family of their client (an IPv4 client's address is IPv4-mapped).
func TestWildcardAddress(t *testing.T) {
	_, port, _ := net.SplitHostPort(kit.FreeAddr(t))
	addr := ":" + port
	g, err := frontdoor.Open(addr, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	label := "dns://" + addr
	report := &frontdoor.Reporter{Server: label, Proto: "udp", Zones: func() []string { return []string{"."} }, Plugin: "warmcache"}
	if err := g.Serve(&frontdoor.Door{Cache: cache(t), Server: coreServer(t, "127.0.0.1:"+port), Label: label, Report: report}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for fam, want := range map[string]float64{"1": 6, "2": 3} {
			if got := testutil.ToFloat64(vars.RequestCount.WithLabelValues(label, ".", "", "udp", fam, "A")); got != want {
				t.Errorf("hits of family %s counted: %v, want %v", fam, got, want)
			}
		}
	}()
	// 127.0.0.2 is not the address the kernel would pick to reply from (127.0.0.1): a reply
	// that does not set its source is dropped by the client's connected socket.
	for _, to := range []string{"127.0.0.1:" + port, "127.0.0.2:" + port, "[::1]:" + port} {
		for _, name := range []string{"hit.test.", "miss.test."} {
			if got := who(t, to, name, 3); got["error"] > 0 || got["empty"] > 0 {
				t.Errorf("%s %s: %v", to, name, got)
			}
		}
	}
}
