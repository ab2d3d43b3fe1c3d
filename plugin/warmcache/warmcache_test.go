package warmcache

import (
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
)

func TestHitTTLDecreases(t *testing.T) {
	modes(t, func(t *testing.T, mode rawMode) {
		u := startLab(t, lab.Config{TTL: 300})
		c, clk := newCache(t, "warmcache", u)
		c.mode.Store(uint32(mode))
		w := &recorder{}

		first := query(t, c, w, "www.example.org.", dns.TypeA)
		if len(first.Answer) == 0 || first.Answer[0].Header().Ttl != 300 {
			t.Fatalf("first answer %v, want TTL 300", first.Answer)
		}
		clk.Advance(10 * time.Second)
		second := query(t, c, w, "www.example.org.", dns.TypeA)
		for _, rr := range second.Answer {
			if rr.Header().Ttl != 290 {
				t.Errorf("TTL after 10s = %d, want 290", rr.Header().Ttl)
			}
		}
		clk.Advance(100 * time.Second)
		third := query(t, c, w, "www.example.org.", dns.TypeA)
		if ttl := third.Answer[0].Header().Ttl; ttl != 190 {
			t.Errorf("TTL after 110s = %d, want 190", ttl)
		}
		if n := u.Count("www.example.org."); n != 1 {
			t.Errorf("upstream saw %d queries, want 1", n)
		}
		if third.Answer[0].(*dns.A).A.String() != first.Answer[0].(*dns.A).A.String() {
			t.Errorf("hit changed the address")
		}
	})
}

func TestQuestionCaseFollowsRequest(t *testing.T) {
	modes(t, func(t *testing.T, mode rawMode) {
		u := startLab(t, lab.Config{})
		c, _ := newCache(t, "warmcache", u)
		c.mode.Store(uint32(mode))
		w := &recorder{}
		query(t, c, w, "www.example.org.", dns.TypeA)
		for _, name := range []string{"WwW.ExAmPlE.oRg.", "WWW.EXAMPLE.ORG.", "www.example.org."} {
			m := query(t, c, w, name, dns.TypeA)
			if m.Question[0].Name != name {
				t.Errorf("question %q, want %q", m.Question[0].Name, name)
			}
		}
		if n := u.Count("www.example.org."); n != 1 {
			t.Errorf("upstream saw %d queries, want 1 (case must not split the key)", n)
		}
	})
}

func TestKeyKeepsDOAndCDApart(t *testing.T) {
	modes(t, func(t *testing.T, mode rawMode) {
		u := startLab(t, lab.Config{})
		c, _ := newCache(t, "warmcache", u)
		c.mode.Store(uint32(mode))
		w := &recorder{}
		variants := []struct {
			name string
			edit []func(*dns.Msg)
		}{
			{"plain", nil},
			{"DO", []func(*dns.Msg){withDO}},
			{"CD", []func(*dns.Msg){withCD}},
			{"DO+CD", []func(*dns.Msg){withDO, withCD}},
		}
		flags := func(how, name string, m *dns.Msg) {
			t.Helper()
			if do := m.IsEdns0() != nil && m.IsEdns0().Do(); do != (name == "DO" || name == "DO+CD") {
				t.Errorf("%s %s: reply DO %v", how, name, do)
			}
			if m.CheckingDisabled != (name == "CD" || name == "DO+CD") {
				t.Errorf("%s %s: reply CD %v", how, name, m.CheckingDisabled)
			}
		}
		for i, v := range variants {
			m := query(t, c, w, "split.example.org.", dns.TypeA, v.edit...)
			if got := u.Count("split.example.org."); got != int64(i+1) {
				t.Errorf("%s: upstream count %d, want %d (a new key)", v.name, got, i+1)
			}
			flags("miss", v.name, m)
		}
		for _, v := range variants { // all four are hits now
			flags("hit", v.name, query(t, c, w, "split.example.org.", dns.TypeA, v.edit...))
		}
		if got := u.Count("split.example.org."); got != 4 {
			t.Errorf("upstream count %d after hits, want 4", got)
		}
	})
}

func TestNegativeTTLFromSOA(t *testing.T) {
	// The lab's SOA has TTL 60 and MINIMUM 30: RFC 2308 says 30.
	u := startLab(t, lab.Config{})
	tests := []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"nx1.example.org.", dns.TypeA, dns.RcodeNameError},
		{"nodata1.example.org.", dns.TypeA, dns.RcodeSuccess},
		{"v4only.example.org.", dns.TypeAAAA, dns.RcodeSuccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newCache(t, "warmcache", u)
			w := &recorder{}
			query(t, c, w, tc.name, tc.qtype)
			h := hashKey(tc.name, tc.qtype, dns.ClassINET, false, false)
			e := c.store.get(h)
			if e == nil || e.class != classDenial || e.ttl != 30 {
				t.Fatalf("entry %+v, want a denial with TTL 30", e)
			}
			clk.Advance(5 * time.Second)
			m := query(t, c, w, tc.name, tc.qtype)
			if m.Rcode != tc.rcode || len(m.Ns) == 0 || m.Ns[0].Header().Ttl != 25 {
				t.Errorf("hit rcode %d, ns %v; want rcode %d and SOA TTL 25", m.Rcode, m.Ns, tc.rcode)
			}
			clk.Advance(26 * time.Second)
			query(t, c, w, tc.name, tc.qtype)
			if n := u.Count(tc.name); n != 2 {
				t.Errorf("upstream saw %d queries, want 2 (expiry after 30s)", n)
			}
		})
	}
}

func TestTTLClamps(t *testing.T) {
	tests := []struct {
		corefile string
		labTTL   uint32
		want     uint32
	}{
		{"warmcache", 1, 5},                            // default minimum
		{"warmcache 60", 300, 60},                      // the TTL argument caps
		{"warmcache {\n success 100 120 10\n}", 3, 10}, // success MINTTL
		{"warmcache {\n success 100 120 0\n}", 3, 3},
		{"warmcache {\n success 100 120\n}", 4000, 120},
	}
	for _, tc := range tests {
		u := startLab(t, lab.Config{TTL: tc.labTTL})
		c, _ := newCache(t, tc.corefile, u)
		w := &recorder{}
		m := query(t, c, w, "clamp.example.org.", dns.TypeA)
		m = query(t, c, w, "clamp.example.org.", dns.TypeA)
		if got := m.Answer[0].Header().Ttl; got != tc.want {
			t.Errorf("%q with upstream TTL %d: TTL %d, want %d", tc.corefile, tc.labTTL, got, tc.want)
		}
	}
}

func TestServfailCachedBriefly(t *testing.T) {
	u := startLab(t, lab.Config{})
	c, clk := newCache(t, "warmcache {\n servfail 2s\n}", u)
	w := &recorder{}
	if m := query(t, c, w, "servfail1.example.org.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %d", m.Rcode)
	}
	clk.Advance(time.Second)
	if m := query(t, c, w, "servfail1.example.org.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %d", m.Rcode)
	}
	if n := u.Count("servfail1.example.org."); n != 1 {
		t.Errorf("upstream saw %d queries within the servfail TTL, want 1", n)
	}
	clk.Advance(2 * time.Second)
	query(t, c, w, "servfail1.example.org.", dns.TypeA)
	if n := u.Count("servfail1.example.org."); n != 2 {
		t.Errorf("upstream saw %d queries after the servfail TTL, want 2", n)
	}
}

func TestServfailNeverReplacesAnswer(t *testing.T) {
	u := startLab(t, lab.Config{TTL: 10})
	c, clk := newCache(t, "warmcache {\n serve_stale 1h 0s\n}", u)
	w := &recorder{}
	query(t, c, w, "keep.example.org.", dns.TypeA)
	u.SetFault(lab.Fault{Kind: lab.ServFail})
	clk.Advance(11 * time.Second) // expired, servable stale
	m := query(t, c, w, "keep.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 || m.Answer[0].Header().Ttl != staleTTL {
		t.Fatalf("stale answer: rcode %d, answer %v; want NOERROR with TTL %d", m.Rcode, m.Answer, staleTTL)
	}
	c.wg.Wait() // the refresh behind the stale answer
	h := hashKey("keep.example.org.", dns.TypeA, dns.ClassINET, false, false)
	if e := c.store.get(h); e == nil || e.class != classSuccess {
		t.Errorf("entry after SERVFAIL upstream: %+v, want the stale success kept", e)
	}
}

func TestNeverCacheTruncated(t *testing.T) {
	// The next handler answers with TC set: nothing is cached.
	u := startLab(t, lab.Config{})
	c, _ := newCache(t, "warmcache", nil)
	n := 0
	c.Next = handlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		n++
		m := new(dns.Msg)
		m.SetReply(r)
		m.Truncated = true
		// What fitted: one record, which would be cacheable were the reply whole.
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 1}}}
		w.WriteMsg(m)
	})
	w := &recorder{}
	for range 3 {
		if m := query(t, c, w, "tc.example.org.", dns.TypeA); !m.Truncated {
			t.Errorf("TC lost")
		}
	}
	if n != 3 || c.store.len() != 0 {
		t.Errorf("truncated reply cached: %d upstream queries, %d entries", n, c.store.len())
	}
	_ = u
}

// modes runs f with hits written as raw bytes and through WriteMsg.
func modes(t *testing.T, f func(t *testing.T, mode rawMode)) {
	for _, m := range []rawMode{rawAlways, rawNever} {
		t.Run(m.String(), func(t *testing.T) { f(t, m) })
	}
}

func TestUDPSizeSetsTC(t *testing.T) {
	modes(t, func(t *testing.T, mode rawMode) {
		u := startLab(t, lab.Config{})
		c, _ := newCache(t, "warmcache", u)
		c.mode.Store(uint32(mode))
		full := query(t, c, &recorder{}, "big1.example.org.", dns.TypeA, withEDNS(4096)) // 40 A records, > 512 bytes
		if len(full.Answer) != 40 {
			t.Fatalf("%d answers over TCP, want 40", len(full.Answer))
		}
		tests := []struct {
			name string
			edit []func(*dns.Msg)
			w    *recorder
			tc   bool
		}{
			{"udp no edns", nil, &recorder{}, true},
			{"udp edns 512", []func(*dns.Msg){withEDNS(512)}, &recorder{}, true},
			{"udp edns 4096", []func(*dns.Msg){withEDNS(4096)}, &recorder{}, false},
			{"tcp", nil, tcpRecorder(), false},
		}
		for _, tc := range tests {
			m := query(t, c, tc.w, "Big1.example.org.", dns.TypeA, tc.edit...)
			if m.Truncated != tc.tc {
				t.Errorf("%s: TC %v, want %v", tc.name, m.Truncated, tc.tc)
			}
			// Truncated as ScrubWriter truncates for cache: the records that fit.
			if tc.tc && (len(m.Answer) == 0 || len(m.Answer) >= 40 || len(m.Question) != 1 || m.Question[0].Name != "Big1.example.org.") {
				t.Errorf("%s: truncated reply has %d answers, question %v", tc.name, len(m.Answer), m.Question)
			}
			if !tc.tc && len(m.Answer) != 40 {
				t.Errorf("%s: %d answers", tc.name, len(m.Answer))
			}
			if hasOPT := m.IsEdns0() != nil; hasOPT != (len(tc.edit) > 0) {
				t.Errorf("%s: OPT present %v", tc.name, hasOPT)
			}
		}
		if n := u.Count("big1.example.org."); n != 1 {
			t.Errorf("upstream saw %d queries, want 1", n)
		}
	})
}

func TestOPTEchoesDO(t *testing.T) {
	modes(t, func(t *testing.T, mode rawMode) {
		u := startLab(t, lab.Config{})
		c, _ := newCache(t, "warmcache", u)
		c.mode.Store(uint32(mode))
		w := &recorder{}
		withSize := func(m *dns.Msg) { m.SetEdns0(1400, true) }
		query(t, c, w, "opt.example.org.", dns.TypeA, withSize)
		m := query(t, c, w, "opt.example.org.", dns.TypeA, withSize)
		// As CoreDNS's ScrubWriter makes it from the request's OPT (request.SizeAndDo).
		o := m.IsEdns0()
		if o == nil || !o.Do() || o.UDPSize() != 1400 || o.Version() != 0 {
			t.Fatalf("OPT %v, want DO, version 0 and the request's size 1400", o)
		}
		if n := len(m.Extra); n != 1 {
			t.Errorf("%d additional records, want only the OPT", n)
		}
		m = query(t, c, w, "opt.example.org.", dns.TypeA) // no EDNS: a different key, no OPT
		if m.IsEdns0() != nil {
			t.Errorf("OPT in a reply to a request without EDNS")
		}
	})
}

func TestZones(t *testing.T) {
	u := startLab(t, lab.Config{})
	c, _ := newCache(t, "warmcache example.org", u)
	w := &recorder{}
	for range 2 {
		query(t, c, w, "in.example.org.", dns.TypeA)
		query(t, c, w, "out.example.net.", dns.TypeA)
	}
	if a, b := u.Count("in.example.org."), u.Count("out.example.net."); a != 1 || b != 2 {
		t.Errorf("upstream counts in-zone %d (want 1), out-of-zone %d (want 2)", a, b)
	}
}
