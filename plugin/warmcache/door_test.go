package warmcache

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

// TestHitEqualsServeDNS: for every query the front door answers, its bytes are those the
// chain would send (ServeDNS through the server's ScrubWriter, raw or WriteMsg); for every
// other query it declines.
func TestHitEqualsServeDNS(t *testing.T) {
	z := &zoneHandler{aa: true, ad: true, rrs: map[string][]dns.RR{
		"www.example.org./A":    {mustRR(t, "www.example.org. 300 IN A 192.0.2.1"), mustRR(t, "www.example.org. 300 IN A 192.0.2.2")},
		"www.example.org./AAAA": {mustRR(t, "www.example.org. 300 IN AAAA 2001:db8::1")},
	}}
	for i := range 60 {
		z.rrs["big.example.org./A"] = append(z.rrs["big.example.org./A"], mustRR(t, fmt.Sprintf("big.example.org. 300 IN A 10.0.1.%d", i+1)))
	}
	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		edit    func(*dns.Msg)
		udp     bool
		answers bool
	}{
		{"plain udp", "www.example.org.", dns.TypeA, nil, true, true},
		{"0x20 tcp", "wWW.eXample.ORG.", dns.TypeA, nil, false, true},
		{"no RD", "www.example.org.", dns.TypeA, func(m *dns.Msg) { m.RecursionDesired = false }, true, true},
		{"AD", "www.example.org.", dns.TypeA, func(m *dns.Msg) { m.AuthenticatedData = true }, true, true},
		{"CD", "www.example.org.", dns.TypeA, func(m *dns.Msg) { m.CheckingDisabled = true }, true, true},
		{"DO", "www.example.org.", dns.TypeAAAA, func(m *dns.Msg) { m.SetEdns0(1400, true) }, true, true},
		{"EDNS", "www.example.org.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(4096, false) }, true, true},
		{"NXDOMAIN", "nx.example.org.", dns.TypeA, nil, true, true},
		{"big over TCP", "big.example.org.", dns.TypeA, nil, false, true},
		{"big over UDP: truncated by the chain", "big.example.org.", dns.TypeA, nil, true, false},
		{"EDNS option", "www.example.org.", dns.TypeA, func(m *dns.Msg) {
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}}
		}, true, false},
		{"EDNS version 1", "www.example.org.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }, true, false},
		{"class CH", "www.example.org.", dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }, true, false},
		{"escaped label byte", `w\.w.example.org.`, dns.TypeA, nil, true, false},
		{"opcode NOTIFY", "www.example.org.", dns.TypeA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }, true, false},
		{"response", "www.example.org.", dns.TypeA, func(m *dns.Msg) { m.Response = true }, true, false},
		{"not cached", "cold.example.org.", dns.TypeA, nil, true, false},
	}
	for _, mode := range []rawMode{rawAlways, rawNever} {
		c := New()
		c.Next = z
		c.mode.Store(uint32(mode))
		t.Cleanup(c.shutdown)
		for _, tc := range tests {
			r := new(dns.Msg)
			r.SetQuestion(tc.qname, tc.qtype)
			if tc.edit != nil {
				tc.edit(r)
			}
			q, err := r.Pack() // before ScrubWriter rewrites r's OPT
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			if tc.name != "not cached" { // fill the cache, then the hit through the chain
				r1 := r.Copy()
				c.ServeDNS(context.Background(), request.NewScrubWriter(r1, &recorder{}), r1)
				r2 := r.Copy()
				w := &recorder{ResponseWriter: test.ResponseWriter{TCP: !tc.udp}}
				c.ServeDNS(context.Background(), request.NewScrubWriter(r2, w), r2)
				want = w.raw[len(w.raw)-1]
			}
			got, rcode, ok := c.Hit(q, tc.udp, []byte("prefix"), "dns://:53")
			if ok != tc.answers {
				t.Errorf("%v %s: answered %v, want %v", mode, tc.name, ok, tc.answers)
				continue
			}
			if !ok {
				continue
			}
			if !bytes.HasPrefix(got, []byte("prefix")) {
				t.Errorf("%s: dst not appended to", tc.name)
			}
			got = got[len("prefix"):]
			gm, wm := new(dns.Msg), new(dns.Msg)
			if err := gm.Unpack(got); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			wm.Unpack(want)
			if gm.Rcode != rcode {
				t.Errorf("%s: rcode %d, reply says %d", tc.name, rcode, gm.Rcode)
			}
			if normalise(gm) != normalise(wm) || gm.Id != wm.Id {
				t.Errorf("%v %s:\n%v\nwant\n%v", mode, tc.name, gm, wm)
			}
			if mode == rawAlways && !bytes.Equal(got, want) {
				t.Errorf("%s: bytes differ from the raw hit", tc.name)
			}
		}
	}
}

// FuzzHit: the front door's parse of arbitrary bytes never panics, and what it answers
// unpacks, with the query's ID.
func FuzzHit(f *testing.F) {
	c := New()
	c.Next = &zoneHandler{rrs: map[string][]dns.RR{"www.example.org./A": {mustRR(f, "www.example.org. 300 IN A 192.0.2.1")}}}
	r := new(dns.Msg)
	r.SetQuestion("www.example.org.", dns.TypeA)
	c.ServeDNS(context.Background(), &recorder{}, r)
	q, _ := r.Pack()
	f.Add(q)
	r.SetEdns0(1232, true)
	q, _ = r.Pack()
	f.Add(q)
	f.Fuzz(func(t *testing.T, b []byte) {
		out, _, ok := c.Hit(b, true, nil, "")
		if !ok {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil {
			t.Fatalf("reply does not unpack: %v", err)
		}
		if m.Id != uint16(b[0])<<8|uint16(b[1]) || !m.Response {
			t.Fatalf("reply %v to %x", m, b)
		}
	})
}
