package racetls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestWinnerFastest(t *testing.T) {
	ls := newLabs(t, lab.Config{Latency: fixed(5 * time.Millisecond)}, lab.Config{Latency: fixed(20 * time.Millisecond)}, lab.Config{Latency: fixed(50 * time.Millisecond)})
	rt := startRT(t, ls.corefile("race all"))
	const n = 30
	for i := range n {
		mustNoError(t, rt, fmt.Sprintf("w%d.example.com.", i))
	}
	var wins [3]uint64
	for i, u := range rt.upstreams {
		wins[i] = u.tally.wins.Load()
	}
	if wins[0]+wins[1]+wins[2] != n || wins[0] <= wins[1]+wins[2] {
		t.Errorf("wins 5ms/20ms/50ms = %v, want most for the 5 ms upstream", wins)
	}
	// Every upstream was asked each time, and losers' replies were read.
	for i, u := range ls.ups {
		if got := u.Count("w0.example.com."); got != 1 {
			t.Errorf("upstream %d saw w0 %d times", i, got)
		}
	}
	waitFor(t, "late replies of the 50 ms upstream", func() bool { return rt.upstreams[2].tally.late.Load() > 0 })
}

func TestServfailLoses(t *testing.T) {
	ls := newLabs(t,
		lab.Config{Latency: fixed(5 * time.Millisecond), Fault: lab.Fault{Kind: lab.ServFail}},
		lab.Config{Latency: fixed(20 * time.Millisecond)})
	rt := startRT(t, ls.corefile("race all"))
	for i := range 10 {
		mustNoError(t, rt, fmt.Sprintf("s%d.example.com.", i))
	}
	if w := rt.upstreams[1].tally.wins.Load(); w != 10 {
		t.Errorf("20 ms NOERROR upstream won %d of 10", w)
	}
	if w := rt.upstreams[0].tally.wins.Load(); w != 0 {
		t.Errorf("SERVFAIL upstream won %d", w)
	}
}

// TestBestFailure: with nothing but failures the best one is returned (a reply without
// the query's question ranks last), and with nothing at all SERVFAIL.
func TestBestFailure(t *testing.T) {
	ls := newLabs(t,
		lab.Config{Fault: lab.Fault{Kind: lab.Refused}},
		lab.Config{Latency: fixed(10 * time.Millisecond), Fault: lab.Fault{Kind: lab.ServFail}})
	rt := startRT(t, ls.corefile("race all\n timeout 500ms"))
	r, err := query(rt, "f.example.com.")
	if err != nil || r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("got %v %v, want the upstream's SERVFAIL", r, err)
	}

	// A reply without the query's question ranks below any upstream's own failure.
	ls = newLabs(t,
		lab.Config{Fault: lab.Fault{Kind: lab.WrongQuestion}},
		lab.Config{Latency: fixed(10 * time.Millisecond), Fault: lab.Fault{Kind: lab.Refused}})
	rt = startRT(t, ls.corefile("race all\n timeout 500ms"))
	if r, err := query(rt, "wq.example.com."); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("wrong question and REFUSED: got %v %v, want the upstream's REFUSED", r, err)
	}

	ls = newLabs(t, lab.Config{Fault: lab.Fault{Kind: lab.BlackHole}})
	rt = startRT(t, ls.corefile("timeout 300ms"))
	m := new(dns.Msg)
	m.SetQuestion("bh.example.com.", dns.TypeA)
	rc, err := rt.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), m)
	if rc != dns.RcodeServerFailure || err == nil {
		t.Errorf("black hole: rcode %d err %v, want SERVFAIL and an error", rc, err)
	}
}

// TestClientIDAndCase: the client gets its own ID and its 0x20 question back, from an
// upstream that answers in lower case (RFC 4343 lets it).
func TestClientIDAndCase(t *testing.T) {
	rt := startRT(t, "racetls . dns://"+lowerCaseServer(t))
	m := new(dns.Msg)
	m.SetQuestion("MiXeD.ExAmPlE.CoM.", dns.TypeA)
	m.Id = 4242
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := rt.ServeDNS(context.Background(), rec, m); err != nil {
		t.Fatal(err)
	}
	if rec.Msg.Id != 4242 || rec.Msg.Question[0].Name != "MiXeD.ExAmPlE.CoM." || len(rec.Msg.Answer) == 0 {
		t.Errorf("reply %v", rec.Msg)
	}
}

// lowerCaseServer starts a UDP server (miekg/dns, as CoreDNS's) that answers every A query
// with its question and owner name in lower case, and returns its address.
func lowerCaseServer(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg)
		r.SetReply(q)
		r.Question[0].Name = strings.ToLower(r.Question[0].Name)
		if r.Question[0].Qtype == dns.TypeA {
			r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: lab.AddrA(r.Question[0].Name)}}
		}
		w.WriteMsg(r)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestExceptCallsNext(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	rt := startRT(t, fmt.Sprintf("racetls example.com tls://%s {\n tls %s\n tls_servername %s\n except skip.example.com\n}", ls.ups[0].TLSAddr(), ls.caPEM, lab.DefaultServerName))
	rt.Next = test.NextHandler(dns.RcodeRefused, nil)
	for name, want := range map[string]int{"a.example.com.": dns.RcodeSuccess, "a.skip.example.com.": dns.RcodeRefused, "example.org.": dns.RcodeRefused} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		rc, _ := rt.ServeDNS(context.Background(), rec, m)
		if rec.Msg != nil {
			rc = rec.Msg.Rcode
		}
		if rc != want {
			t.Errorf("%s: rcode %d, want %d", name, rc, want)
		}
	}
	if ls.ups[0].Count("a.skip.example.com.") != 0 {
		t.Error("an excepted name reached the upstream")
	}
}

// TestPipelining: 200 concurrent queries to 3 upstreams travel over the
// configured connections, as the lab counts them.
func TestPipelining(t *testing.T) {
	cfg := lab.Config{Latency: fixed(50 * time.Millisecond)}
	ls := newLabs(t, cfg, cfg, cfg)
	rt := startRT(t, ls.corefile("race all"))
	for _, u := range rt.upstreams {
		waitFor(t, "2 connections", func() bool { return openConns(u) == 2 })
	}
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := query(rt, fmt.Sprintf("p%d.example.com.", i))
			if err == nil && r.Rcode != dns.RcodeSuccess {
				err = fmt.Errorf("rcode %d", r.Rcode)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, u := range ls.ups {
		st := u.Stats()
		if st.Conns > 4 {
			t.Errorf("upstream %d: %d connections for %d concurrent queries, want <= max_conns 4", i, st.Conns, n)
		}
		if st.QueriesTLS < n {
			t.Errorf("upstream %d: %d queries, want >= %d", i, st.QueriesTLS, n)
		}
		t.Logf("upstream %d: %d conns, %d queries", i, st.Conns, st.QueriesTLS)
	}
}

// TestOnDemandConns: past max_inflight a further connection opens, up to max_conns.
func TestOnDemandConns(t *testing.T) {
	ls := newLabs(t, lab.Config{Latency: fixed(100 * time.Millisecond)})
	rt := startRT(t, ls.corefile("conns 1\n max_conns 3\n max_inflight 10"))
	waitFor(t, "1 connection", func() bool { return openConns(rt.upstreams[0]) == 1 })
	// 25 queries and a probe per connection fit in 3 connections of 10: none is busy.
	var wg sync.WaitGroup
	for i := range 25 {
		wg.Add(1)
		go func() { defer wg.Done(); mustNoError(t, rt, fmt.Sprintf("d%d.example.com.", i)) }()
	}
	wg.Wait()
	if c := ls.ups[0].Stats().Conns; c < 2 || c > 3 {
		t.Errorf("%d connections for 25 queries at max_inflight 10, want 2..3", c)
	}

	// At max_conns with every connection full, a query fails at once as busy. The upstream
	// never answers, so that nothing frees a slot: each connection holds its keepalive
	// probe and one query.
	ls = newLabs(t, lab.Config{Fault: lab.Fault{Kind: lab.BlackHole}})
	rt = startRT(t, ls.corefile("conns 1\n max_conns 2\n max_inflight 2\n timeout 5s"))
	var pending sync.WaitGroup
	for i, want := range []int{1, 2} {
		name := fmt.Sprintf("full%d.example.com.", i)
		pending.Add(1)
		go func() { defer pending.Done(); query(rt, name) }()
		waitFor(t, name+" and the probes at the upstream", func() bool {
			return ls.ups[0].Count(name) == 1 && ls.ups[0].Count(".") == int64(want) && openConns(rt.upstreams[0]) == want
		})
	}
	if r, err := query(rt, "busy.example.com."); err == nil {
		t.Errorf("a query past max_conns: %v, want no reply", r)
	}
	u := rt.upstreams[0]
	if n := testutil.ToFloat64(errorCount.WithLabelValues(rt.server, u.name, "tls", kindBusy)); n != 1 || ls.ups[0].Stats().Conns != 2 {
		t.Errorf("past max_conns 2: %v busy errors, %d connections; want 1 and 2", n, ls.ups[0].Stats().Conns)
	}
	rt.OnShutdown() // ends the queries that wait for the upstream
	pending.Wait()
}

// TestKFastest: in K-fastest mode each client query reaches at most K upstreams, the
// fastest: the slowest is listed first, so that only the order by latency leaves it out.
func TestKFastest(t *testing.T) {
	ls := newLabs(t, lab.Config{Latency: fixed(100 * time.Millisecond)}, lab.Config{Latency: fixed(5 * time.Millisecond)}, lab.Config{Latency: fixed(10 * time.Millisecond)})
	// hedge 1s: no escalation on silence, so the count is exact.
	rt := startRT(t, ls.corefile("race 2\n hedge 1s"))
	const n = 30
	for i := range n {
		name := fmt.Sprintf("k%d.example.com.", i)
		mustNoError(t, rt, name)
		var asked int64
		for _, u := range ls.ups {
			asked += u.Count(name)
		}
		if asked > 2 {
			t.Errorf("%s reached %d upstreams, want <= 2", name, asked)
		}
	}
	var q uint64
	for _, u := range rt.upstreams {
		q += u.tally.queries.Load()
	}
	if q > 2*n {
		t.Errorf("%d upstream queries for %d client queries, want <= %d", q, n, 2*n)
	}
	// Once measured (its first reply or probe), the slowest is left out.
	if rt.upstreams[0].tally.queries.Load() > 5 {
		t.Errorf("100 ms upstream asked %d times", rt.upstreams[0].tally.queries.Load())
	}
}

// TestHedge: the best upstream answering within the hedge delay means one
// upstream query per client query.
func TestHedge(t *testing.T) {
	ls := newLabs(t, lab.Config{Latency: fixed(2 * time.Millisecond)}, lab.Config{Latency: fixed(2 * time.Millisecond)})
	rt := startRT(t, ls.corefile("hedge 500ms"))
	for i := range 20 {
		name := fmt.Sprintf("h%d.example.com.", i)
		mustNoError(t, rt, name)
		if got := ls.ups[0].Count(name) + ls.ups[1].Count(name); got != 1 {
			t.Errorf("%s sent to %d upstreams, want 1", name, got)
		}
	}
}

// TestHedgeEscalates: a silent best upstream makes the hedge ask the next. The silent
// one is ranked first for every query, so that each answer needs the escalation: without
// it the query waits in silence until its deadline and fails. The delay is the hedge's,
// not the automatic one; a failure escalates at once, without waiting for it.
func TestHedgeEscalates(t *testing.T) {
	ls := newLabs(t, lab.Config{Fault: lab.Fault{Kind: lab.BlackHole}}, lab.Config{Latency: fixed(2 * time.Millisecond)})
	rt := startRT(t, ls.corefile("hedge 30ms\n timeout 1s"))
	silent, good := rt.upstreams[0], rt.upstreams[1]
	for i := range 5 {
		silent.ewma.Store(math.Float64bits(float64(time.Millisecond)))
		good.ewma.Store(math.Float64bits(float64(50 * time.Millisecond)))
		name := fmt.Sprintf("he%d.example.com.", i)
		if !mustNoError(t, rt, name) {
			continue
		}
		if a, b := ls.ups[0].Count(name), ls.ups[1].Count(name); a != 1 || b != 1 {
			t.Errorf("%s: silent upstream asked %d times, next one %d; want 1 and 1", name, a, b)
		}
	}
	if w := good.tally.wins.Load(); w != 5 {
		t.Errorf("the answering upstream won %d of 5", w)
	}

	// A client deadline (300 ms) before a long hedge (4 s): the automatic delay (50 ms
	// here) would ask the next upstream, the hedge does not. A SERVFAIL is no silence: it
	// makes the race ask the next one at once, while the silent one is still outstanding.
	ls = newLabs(t, lab.Config{Fault: lab.Fault{Kind: lab.BlackHole}}, lab.Config{Fault: lab.Fault{Kind: lab.ServFail}}, lab.Config{Latency: fixed(2 * time.Millisecond)})
	for _, c := range []struct {
		race     string
		ranks    [3]int // the upstreams (silent, SERVFAIL, answering) in order
		answered bool
	}{
		{"1", [3]int{0, 2, 1}, false}, // the silent one alone: the hedge has not passed
		{"2", [3]int{0, 1, 2}, true},  // the silent and the SERVFAIL one: the failure escalates
	} {
		rt := startRT(t, ls.corefile("race "+c.race+"\n hedge 4s\n timeout 5s"))
		for rank, i := range c.ranks {
			rt.upstreams[i].ewma.Store(math.Float64bits(float64(time.Duration(rank+1) * 10 * time.Millisecond)))
		}
		name := fmt.Sprintf("race%s.example.com.", c.race)
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		rt.ServeDNS(ctx, rec, m)
		cancel()
		answered := rec.Msg != nil && rec.Msg.Rcode == dns.RcodeSuccess
		wantNext := int64(0)
		if c.answered {
			wantNext = 1
		}
		if a, b := ls.ups[0].Count(name), ls.ups[2].Count(name); a != 1 || b != wantNext || answered != c.answered {
			t.Errorf("race %s, hedge 4s, deadline 300ms: silent upstream asked %d times, answering one %d, answered %v; want 1, %d, %v",
				c.race, a, b, answered, wantNext, c.answered)
		}
	}
}

// TestServeBeforeStartup: a query handed over before OnStartup, or after OnShutdown, gets
// SERVFAIL instead of touching per-upstream state that does not exist yet.
func TestServeBeforeStartup(t *testing.T) {
	rt := New()
	rt.upstreams = append(rt.upstreams, newUpstream("127.0.0.1:1", &streamTransport{addr: "127.0.0.1:1", tlsConfig: &tls.Config{}}, &rt.opts))
	m := new(dns.Msg)
	m.SetQuestion("example.org.", dns.TypeA)
	rc, err := rt.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), m)
	if rc != dns.RcodeServerFailure || !errors.Is(err, errNotStarted) {
		t.Fatalf("before startup: rcode %d, err %v; want SERVFAIL and %v", rc, err, errNotStarted)
	}
	rt.OnStartup()
	rt.OnShutdown()
	rc, err = rt.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), m)
	if rc != dns.RcodeServerFailure || !errors.Is(err, errNotStarted) {
		t.Fatalf("after shutdown: rcode %d, err %v; want SERVFAIL and %v", rc, err, errNotStarted)
	}
}

// TestObserveStallClamped: one stall of a fast upstream moves its average a little, a real
// slowdown moves it within a few replies, and a failure moves it at once.
func TestObserveStallClamped(t *testing.T) {
	u := newUpstream("127.0.0.1:1", &streamTransport{addr: "127.0.0.1:1", tlsConfig: &tls.Config{}}, &options{timeout: 2 * time.Second})
	for range 20 {
		u.observe(8*time.Millisecond, true)
	}
	u.observe(300*time.Millisecond, true)
	if s := u.score(); s > 12*time.Millisecond {
		t.Errorf("after one 300ms stall: score %v, want <= 12ms", s)
	}
	for range 15 {
		u.observe(300*time.Millisecond, true)
	}
	if s := u.score(); s < 200*time.Millisecond {
		t.Errorf("after 15 replies at 300ms: score %v, want >= 200ms", s)
	}
	f := newUpstream("127.0.0.1:2", &streamTransport{addr: "127.0.0.1:2", tlsConfig: &tls.Config{}}, &options{timeout: 2 * time.Second})
	f.observe(8*time.Millisecond, true)
	f.observe(8*time.Millisecond, false)
	if s := f.score(); s < 100*time.Millisecond {
		t.Errorf("after a failure: score %v, want >= 100ms", s)
	}
}

// TestUnclaimedReply: a reply that may win but was read while another reply held the
// race's claim (see conn.reply) reaches the race packed. The race unpacks it itself: one
// that does not unpack counts as garbage and the race goes on; one that does wins.
func TestUnclaimedReply(t *testing.T) {
	rt := &RaceTLS{opts: *fuzzOptions(2)}
	u := newFuzzUpstream(&rt.opts, 11)
	u.dialErr = errDown // no connection and the last dial failed: asking it fails at once
	rt.upstreams = []*upstream{u}
	fq := fuzzQueries[0]
	rs, err := rt.newRace(context.Background(), &test.ResponseWriter{}, fq.msg(), "")
	if err != nil {
		t.Fatal(err)
	}
	errs := u.tally.errors.Load()
	rs.ch, rs.outstanding = make(chan result, 2), 2
	good := fq.reply(0, dns.RcodeSuccess)
	cut := good[:wire.HeaderLen+3] // NOERROR in the header, the question cut short
	rs.ch <- result{u: u, ctr: u.ctr, msg: cut, rcode: dns.RcodeSuccess}
	rs.ch <- result{u: u, ctr: u.ctr, msg: good, rcode: dns.RcodeSuccess}
	m, won, err := rs.decide()
	if err != nil || won != u || m == nil || len(m.Answer) != 1 {
		t.Fatalf("got %v from %v (%v), want the reply with one answer from %s", m, won, err, u.name)
	}
	if e, w := u.tally.errors.Load()-errs, u.tally.wins.Load(); e != 1 || w != 1 {
		t.Errorf("%d errors and %d wins counted, want the cut reply as 1 error (garbage) and 1 win", e, w)
	}
	if !rs.finished() {
		t.Error("the race is not over after decide")
	}
}
