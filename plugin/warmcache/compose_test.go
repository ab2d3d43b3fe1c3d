package warmcache

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/cache"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

// zoneHandler answers from a fixed table, keyed by lower-cased name and type; anything else
// is NXDOMAIN with an SOA.
type zoneHandler struct {
	mu   sync.Mutex
	rrs  map[string][]dns.RR
	n    int
	aa   bool
	ad   bool
	hook func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) bool // true: handled
}

func (z *zoneHandler) Name() string { return "zone" }

func (z *zoneHandler) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	z.mu.Lock()
	z.n++
	z.mu.Unlock()
	if z.hook != nil && z.hook(ctx, w, r) {
		return dns.RcodeSuccess, nil
	}
	q := r.Question[0]
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative, m.AuthenticatedData, m.RecursionAvailable = z.aa, z.ad, true
	m.Zero = true // must not reach the client: a reply's Z is 0 (RFC 1035 §4.1.1)
	rrs, ok := z.rrs[strings.ToLower(q.Name)+"/"+dns.TypeToString[q.Qtype]]
	switch {
	case ok:
		m.Answer = rrs
	default:
		m.Rcode = dns.RcodeNameError
		soa, _ := dns.NewRR("example.org. 60 IN SOA ns.example.org. host.example.org. 1 3600 600 86400 30")
		m.Ns = []dns.RR{soa}
	}
	if o := r.IsEdns0(); o != nil {
		// An upstream's OPT with options of its own, which cache does not pass on.
		m.SetEdns0(4096, o.Do())
		m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "6e7364"}}
	}
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// normalise returns m in presentation format with its ID and TTLs zeroed: what a client
// sees, whatever the compression.
func normalise(m *dns.Msg) string {
	m = m.Copy()
	m.Id = 0
	for _, s := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range s {
			if rr.Header().Rrtype != dns.TypeOPT {
				rr.Header().Ttl = 0
			}
		}
	}
	return m.String()
}

// TestHitEqualsCache sends the same requests to warmcache, with hits as raw bytes and as
// WriteMsg, and to CoreDNS's cache, all through the ScrubWriter the server puts under
// every chain, and requires the same reply (ID and TTLs aside) for the miss and the hit.
func TestHitEqualsCache(t *testing.T) {
	odd := `a\.b\000c\255\ \(x.Example.ORG.` // a label with a dot, NUL, 0xFF, space and '('
	z := &zoneHandler{aa: true, ad: true, rrs: map[string][]dns.RR{
		"www.example.org./A": {mustRR(t, "www.example.org. 300 IN A 192.0.2.1"), mustRR(t, "www.example.org. 300 IN A 192.0.2.2")},
		"alias.example.org./A": {mustRR(t, "alias.example.org. 300 IN CNAME www.example.org."),
			mustRR(t, "www.example.org. 300 IN A 192.0.2.1")},
		strings.ToLower(odd) + "/A": {mustRR(t, odd+" 300 IN A 192.0.2.9")},
	}}
	for i := range 60 {
		z.rrs["big.example.org./A"] = append(z.rrs["big.example.org./A"], mustRR(t, fmt.Sprintf("big.example.org. 300 IN A 10.0.0.%d", i+1)))
	}
	type req struct {
		name  string
		qname string
		edit  func(*dns.Msg)
		tcp   bool
	}
	reqs := []req{
		{"plain", "www.example.org.", nil, false},
		{"0x20", "wWw.ExAmple.oRG.", nil, false},
		{"no RD", "www.example.org.", func(m *dns.Msg) { m.RecursionDesired = false }, false},
		{"CD", "www.example.org.", func(m *dns.Msg) { m.CheckingDisabled = true }, false},
		{"AD", "www.example.org.", func(m *dns.Msg) { m.AuthenticatedData = true }, false},
		{"DO", "www.example.org.", func(m *dns.Msg) { m.SetEdns0(1400, true) }, false},
		{"EDNS 4096", "www.example.org.", func(m *dns.Msg) { m.SetEdns0(4096, false) }, false},
		{"EDNS option", "www.example.org.", func(m *dns.Msg) {
			m.SetEdns0(1232, false)
			o := m.IsEdns0()
			o.Option = append(o.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		}, false},
		{"CNAME", "Alias.example.org.", nil, false},
		{"odd label bytes", strings.ToUpper(odd[:1]) + odd[1:], nil, false},
		{"NXDOMAIN", "nx.example.org.", func(m *dns.Msg) { m.SetEdns0(1232, false) }, false},
		{"big over UDP", "big.example.org.", nil, false},
		{"big over UDP with EDNS 512", "big.example.org.", func(m *dns.Msg) { m.SetEdns0(512, false) }, false},
		{"big over TCP", "big.example.org.", nil, true},
		{"big over UDP with EDNS 4096", "big.example.org.", func(m *dns.Msg) { m.SetEdns0(4096, false) }, false},
	}
	type server struct {
		name string
		h    plugin.Handler
	}
	mk := func() []server {
		raw, wm := New(), New()
		raw.Next, wm.Next = z, z
		raw.mode.Store(uint32(rawAlways))
		wm.mode.Store(uint32(rawNever))
		t.Cleanup(raw.shutdown)
		t.Cleanup(wm.shutdown)
		ca := cache.New()
		ca.Next = z
		return []server{{"cache", ca}, {"warmcache raw", raw}, {"warmcache writemsg", wm}}
	}
	for _, rq := range reqs {
		t.Run(rq.name, func(t *testing.T) {
			servers := mk()
			for _, round := range []string{"miss", "hit"} {
				var want string
				var wantLen int
				for _, s := range servers {
					r := new(dns.Msg)
					qname := rq.qname
					if round == "hit" {
						qname = flipCase(qname) // the hit asks with other 0x20 bits than the miss
					}
					r.SetQuestion(qname, dns.TypeA)
					if rq.edit != nil {
						rq.edit(r)
					}
					w := &recorder{ResponseWriter: test.ResponseWriter{TCP: rq.tcp}}
					if _, err := s.h.ServeDNS(context.Background(), request.NewScrubWriter(r, w), r); err != nil {
						t.Fatal(err)
					}
					got := w.reply(t)
					if got.Id != r.Id {
						t.Errorf("%s %s: ID %d, want %d", s.name, round, got.Id, r.Id)
					}
					if got.Question[0].Name != r.Question[0].Name {
						t.Errorf("%s %s: question %q, want %q as sent", s.name, round, got.Question[0].Name, r.Question[0].Name)
					}
					n := normalise(got)
					size := len(w.raw[len(w.raw)-1])
					if s.name == "cache" {
						want, wantLen = n, size
						continue
					}
					if n != want {
						t.Errorf("%s %s differs from cache:\n%s\nwant:\n%s", s.name, round, n, want)
					}
					if size != wantLen { // compression, which the text does not show
						t.Errorf("%s %s: %d bytes, cache %d", s.name, round, size, wantLen)
					}
				}
			}
		})
	}
}

// TestReentryGetsWriteMsg is a file-like plugin below the cache that chases a CNAME by
// asking the server again under a nonwriter (pkg/upstream): the hit it gets for the target
// must come through WriteMsg, or the nonwriter passes it to the client and captures nothing.
func TestReentryGetsWriteMsg(t *testing.T) {
	c := New()
	c.mode.Store(uint32(rawAlways))
	t.Cleanup(c.shutdown)
	z := &zoneHandler{rrs: map[string][]dns.RR{
		"www.other.test./A": {mustRR(t, "www.other.test. 300 IN A 192.0.2.7")},
	}}
	z.hook = func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) bool {
		if r.Question[0].Name != "alias.example.org." {
			return false
		}
		up := new(dns.Msg)
		up.SetQuestion("www.other.test.", dns.TypeA)
		nw := nonwriter.New(w)
		c.ServeDNS(ctx, nw, up) // as upstream.Lookup, through the server's chain
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{mustRR(t, "alias.example.org. 300 IN CNAME www.other.test.")}
		if nw.Msg != nil {
			m.Answer = append(m.Answer, nw.Msg.Answer...)
		}
		w.WriteMsg(m)
		return true
	}
	c.Next = z
	// The target is cached first, so that the chase hits.
	for _, name := range []string{"www.other.test.", "alias.example.org."} {
		w := &recorder{}
		r := new(dns.Msg)
		r.SetQuestion(name, dns.TypeA)
		if _, err := c.ServeDNS(context.Background(), w, r); err != nil {
			t.Fatal(err)
		}
		if name == "alias.example.org." {
			if len(w.raw) != 1 {
				t.Fatalf("client got %d replies, want 1", len(w.raw))
			}
			if m := w.reply(t); len(m.Answer) != 2 {
				t.Fatalf("chased answer has %d records, want CNAME and A:\n%v", len(m.Answer), m)
			}
		}
	}
}

// TestChainMode checks which chains above the cache allow raw bytes.
func TestChainMode(t *testing.T) {
	tests := []struct {
		chain []string
		mode  rawMode
		why   string
	}{
		{[]string{"warmcache", "forward"}, rawAlways, ""},
		{[]string{"errors", "health", "ready", "reload", "loop", "warmcache", "kubernetes"}, rawAlways, ""},
		{[]string{"errors", "prometheus", "warmcache"}, rawNoError, "prometheus"},
		{[]string{"prometheus", "errors", "log", "warmcache"}, rawNever, "log"},
		{[]string{"loadbalance", "warmcache"}, rawNever, "loadbalance"},
		{[]string{"rewrite", "warmcache"}, rawNever, "rewrite"},
		{[]string{"dns64", "warmcache"}, rawNever, "dns64"},
		{[]string{"autopath", "warmcache"}, rawNever, "autopath"},
		{[]string{"dnstap", "warmcache"}, rawNever, "dnstap"},
		{[]string{"someplugin", "warmcache"}, rawNever, "someplugin"},
		{[]string{"warmcache", "rewrite", "header", "minimal"}, rawAlways, ""}, // below the cache
	}
	for _, tc := range tests {
		mode, why := chainMode(tc.chain, "warmcache")
		if mode != tc.mode || why != tc.why {
			t.Errorf("%v: %v (%q), want %v (%q)", tc.chain, mode, why, tc.mode, tc.why)
		}
	}
}

func TestForeignReentry(t *testing.T) {
	tests := []struct {
		blocks [][]string
		want   bool
	}{
		{[][]string{{"errors", "warmcache", "kubernetes", "racetls"}}, false},
		{[][]string{{"warmcache", "racetls"}, {"file"}}, true},
		{[][]string{{"warmcache", "file"}, {"forward", "cache"}}, false},
		{[][]string{{"warmcache"}, {"template", "log"}}, true},
	}
	for _, tc := range tests {
		if got := foreignReentry(tc.blocks); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.blocks, got, tc.want)
		}
	}
}

// TestRefreshCarriesServer: a refresh by the sweeper runs with the server, view and loop
// key of a real request for the entry, so that a plugin below can re-enter the server.
func TestRefreshCarriesServer(t *testing.T) {
	srv := &dnsserver.Server{}
	var mu sync.Mutex
	var seen []any
	z := &zoneHandler{rrs: map[string][]dns.RR{"ttl.example.org./A": {mustRR(t, "ttl.example.org. 10 IN A 192.0.2.3")}}}
	var names []string
	var udp, edns []bool
	z.hook = func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) bool {
		mu.Lock()
		seen = append(seen, ctx.Value(dnsserver.Key{}), ctx.Value(dnsserver.ViewKey{}))
		names = append(names, r.Question[0].Name)
		edns = append(edns, r.IsEdns0() != nil)
		_, u := w.RemoteAddr().(*net.UDPAddr)
		udp = append(udp, u)
		mu.Unlock()
		return false
	}
	c := New()
	clk := newClock()
	c.now = clk.Now
	c.Next = z
	t.Cleanup(c.shutdown)
	ctx := context.WithValue(context.Background(), dnsserver.Key{}, srv)
	ctx = context.WithValue(ctx, dnsserver.LoopKey{}, 0)
	ctx = context.WithValue(ctx, dnsserver.ViewKey{}, "inside")
	for range 3 { // a miss and two hits: popular
		r := new(dns.Msg)
		r.SetQuestion("tTl.eXample.org.", dns.TypeA)
		c.ServeDNS(ctx, &recorder{}, r) // a UDP client
	}
	clk.Advance(9 * time.Second)
	if n := c.sweep(clk.Now()); n != 1 {
		t.Fatalf("sweep started %d refreshes, want 1", n)
	}
	c.wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 4 {
		t.Fatalf("chain asked %d times, want 2", len(seen)/2)
	}
	if seen[2] != srv || seen[3] != "inside" {
		t.Errorf("refresh context: server %v, view %v; want the request's %p and \"inside\"", seen[2], seen[3], srv)
	}
	// As cache's prefetch re-asks the client's question with the client's writer.
	if edns[1] {
		t.Error("refresh asked with EDNS where the request had none")
	}
	if names[1] != "tTl.eXample.org." || !udp[1] {
		t.Errorf("refresh asked %q (UDP %v), want the client's \"tTl.eXample.org.\" over UDP", names[1], udp[1])
	}
}

// TestCoalescedUncachedNotShared: a request that waited for another's miss gets its own
// answer from the chain when that miss was not cached (here a truncated UDP reply, which a
// TCP client must not receive).
func TestCoalescedUncachedNotShared(t *testing.T) {
	release := make(chan struct{})
	var calls sync.WaitGroup
	calls.Add(1)
	first := true
	var mu sync.Mutex
	z := &zoneHandler{}
	z.hook = func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) bool {
		mu.Lock()
		leader := first
		first = false
		mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(r)
		if leader {
			calls.Done()
			<-release
		}
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			m.Truncated = true
		} else {
			m.Answer = []dns.RR{mustRR(t, "tc.example.org. 300 IN A 192.0.2.4")}
		}
		m.SetEdns0(4096, false)
		m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "6e7364"}}
		w.WriteMsg(m)
		return true
	}
	c := New()
	c.Next = z
	t.Cleanup(c.shutdown)
	r := new(dns.Msg)
	r.SetQuestion("tc.example.org.", dns.TypeA)
	udp, tcp := &recorder{}, tcpRecorder()
	done := make(chan struct{})
	go func() {
		c.ServeDNS(context.Background(), udp, r.Copy())
		close(done)
	}()
	calls.Wait()
	go func() {
		// Let the TCP request join the flight, then let the leader finish.
		for c.flightLen() == 0 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		close(release)
	}()
	c.ServeDNS(context.Background(), tcp, r.Copy())
	<-done
	if m := udp.reply(t); !m.Truncated {
		t.Errorf("UDP client: TC not set")
	}
	if m := tcp.reply(t); m.Truncated || len(m.Answer) != 1 {
		t.Errorf("TCP client got the UDP client's truncated reply: %v", m)
	} else if m.IsEdns0() != nil {
		t.Errorf("TCP client got the upstream's OPT, which cache does not pass on: %v", m.IsEdns0())
	}
}

func (c *WarmCache) flightLen() int {
	c.flights.mu.Lock()
	defer c.flights.mu.Unlock()
	return len(c.flights.m)
}

// flipCase swaps the case of every ASCII letter of s.
func flipCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 32
		case 'A' <= c && c <= 'Z':
			b[i] = c + 32
		}
	}
	return string(b)
}

// TestIncompleteChainNotCached: a NOERROR reply whose CNAME chain does not reach the
// queried type, without an SOA (an out-of-zone chase that failed), is not cached, as cache
// does not cache it (RFC 2308 §5).
func TestIncompleteChainNotCached(t *testing.T) {
	z := &zoneHandler{rrs: map[string][]dns.RR{
		"alias.example.org./A": {mustRR(t, "alias.example.org. 300 IN CNAME www.other.test.")},
		"full.example.org./A": {mustRR(t, "full.example.org. 300 IN CNAME www.other.test."),
			mustRR(t, "www.other.test. 300 IN A 192.0.2.5")},
		"loop.example.org./A": {mustRR(t, "loop.example.org. 300 IN CNAME loop2.example.org."),
			mustRR(t, "loop2.example.org. 300 IN CNAME loop.example.org.")},
	}}
	c := New()
	c.Next = z
	t.Cleanup(c.shutdown)
	for name, cached := range map[string]bool{"alias.example.org.": false, "full.example.org.": true, "loop.example.org.": false} {
		r := new(dns.Msg)
		r.SetQuestion(name, dns.TypeA)
		c.ServeDNS(context.Background(), &recorder{}, r)
		if got := c.store.get(hashKey(name, dns.TypeA, dns.ClassINET, false, false)) != nil; got != cached {
			t.Errorf("%s: cached %v, want %v", name, got, cached)
		}
	}
}

// TestPrometheusSeesWhatCacheShows: under prometheus (rawNoError), the recorder's rcode and
// size for a hit are those it records for cache's hit, with and without EDNS.
func TestPrometheusSeesWhatCacheShows(t *testing.T) {
	z := &zoneHandler{rrs: map[string][]dns.RR{"www.example.org./A": {mustRR(t, "www.example.org. 300 IN A 192.0.2.1")}}}
	wc := New()
	wc.Next = z
	wc.mode.Store(uint32(rawNoError))
	t.Cleanup(wc.shutdown)
	ca := cache.New()
	ca.Next = z
	for _, name := range []string{"www.example.org.", "nx.example.org."} {
		for _, edns := range []bool{false, true} {
			var got [2]*metrics.Recorder
			for i, h := range []plugin.Handler{ca, wc} {
				for range 2 { // miss, then the hit recorded
					r := new(dns.Msg)
					r.SetQuestion(name, dns.TypeA)
					if edns {
						r.SetEdns0(1232, false)
					}
					rec := metrics.NewRecorder(request.NewScrubWriter(r, &recorder{}))
					plugin.NextOrFailure("prometheus", h, context.Background(), rec, r)
					got[i] = rec
				}
			}
			if got[0].Rcode != got[1].Rcode || got[0].Len != got[1].Len {
				t.Errorf("%s edns %v: warmcache rcode %d size %d, cache %d %d", name, edns, got[1].Rcode, got[1].Len, got[0].Rcode, got[0].Len)
			}
		}
	}
}

// TestAsksWithAD: a miss, a coalesced miss alone and a refresh ask the rest of the chain
// with AD set, as cache does, so that an upstream says whether it validated the answer;
// a client that did not ask for AD (nor DO) gets it cleared.
func TestAsksWithAD(t *testing.T) {
	var mu sync.Mutex
	var ads []bool
	z := &zoneHandler{ad: true, rrs: map[string][]dns.RR{"ad.example.org./A": {mustRR(t, "ad.example.org. 10 IN A 192.0.2.8")}}}
	z.hook = func(_ context.Context, _ dns.ResponseWriter, r *dns.Msg) bool {
		mu.Lock()
		ads = append(ads, r.AuthenticatedData)
		mu.Unlock()
		return false
	}
	c := New()
	clk := newClock()
	c.now = clk.Now
	c.Next = z
	t.Cleanup(c.shutdown)
	var last *dns.Msg
	for range 3 {
		r := new(dns.Msg)
		r.SetQuestion("ad.example.org.", dns.TypeA)
		w := &recorder{}
		c.ServeDNS(context.Background(), w, r)
		last = w.reply(t)
	}
	if last.AuthenticatedData {
		t.Error("AD set for a client that asked with neither AD nor DO")
	}
	clk.Advance(9 * time.Second)
	c.sweep(clk.Now())
	c.wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(ads) != 2 || !ads[0] || !ads[1] {
		t.Errorf("AD of the queries down the chain (miss, refresh): %v, want [true true]", ads)
	}
}
