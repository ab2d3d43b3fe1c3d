package frontdoor

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

func packed(t *testing.T, rrs []string, edns bool) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	m.Response = true
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	m.Extra = append(m.Extra, m.Answer...)
	if edns {
		m.SetEdns0(1232, false)
	}
	m.Compress = false
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func types(rrs []dns.RR) string {
	s := ""
	for _, rr := range rrs {
		s += dns.TypeToString[rr.Header().Rrtype] + " "
	}
	return s
}

// TestRotateAsLoadbalance: sections come out in loadbalance's order of types, with the same
// records, the address records rotated; the OPT stays last.
func TestRotateAsLoadbalance(t *testing.T) {
	var addrs []string
	for i := range 4 {
		addrs = append(addrs, fmt.Sprintf("www.example.org. 60 IN A 192.0.2.%d", i+1))
	}
	mixed := append([]string{"www.example.org. 60 IN MX 10 mx1.example.org.", "www.example.org. 60 IN TXT \"x\""}, addrs...)
	mixed = append(mixed, "www.example.org. 60 IN CNAME c.example.org.", "www.example.org. 60 IN MX 20 mx2.example.org.")
	for _, tc := range []struct {
		name  string
		rrs   []string
		order string
	}{
		{"addresses", addrs, "A A A A "},
		{"mixed", mixed, "CNAME TXT A A A A MX MX "},
	} {
		first, firstMX := map[string]int{}, map[string]int{}
		for range 200 {
			b := packed(t, tc.rrs, true)
			if !Rotate(b) {
				t.Fatalf("%s: not rotated", tc.name)
			}
			m := new(dns.Msg)
			if err := m.Unpack(b); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got := types(m.Answer); got != tc.order {
				t.Fatalf("%s: answer types %q, want %q", tc.name, got, tc.order)
			}
			if got := types(m.Extra); got != tc.order+"OPT " {
				t.Fatalf("%s: additional types %q, want %q and OPT last", tc.name, got, tc.order)
			}
			for _, rr := range m.Answer {
				if a, ok := rr.(*dns.A); ok {
					first[a.A.String()]++
					break
				}
			}
			for _, rr := range m.Answer {
				if mx, ok := rr.(*dns.MX); ok {
					firstMX[mx.Mx]++
					break
				}
			}
		}
		if len(first) != 4 {
			t.Errorf("%s: first address over 200 replies: %v, want all four", tc.name, first)
		}
		if tc.name == "mixed" && len(firstMX) != 2 {
			t.Errorf("%s: first MX over 200 replies: %v, want both", tc.name, firstMX)
		}
	}
}

func TestRotateLeavesOthers(t *testing.T) {
	b := packed(t, []string{"www.example.org. 60 IN A 192.0.2.1", "www.example.org. 60 IN A 192.0.2.2"}, false)
	b[3] = b[3]&0xF0 | dns.RcodeNameError
	c := append([]byte(nil), b...)
	for range 20 {
		Rotate(c)
		if string(c) != string(b) {
			t.Fatal("NXDOMAIN reply reordered")
		}
	}
	// A zone transfer's records keep their order, as loadbalance leaves them.
	x := new(dns.Msg)
	x.SetQuestion("example.org.", dns.TypeAXFR)
	x.Response = true
	for _, s := range []string{"example.org. 60 IN SOA ns.example.org. host.example.org. 1 2 3 4 30",
		"a.example.org. 60 IN A 192.0.2.1", "a.example.org. 60 IN A 192.0.2.2", "a.example.org. 60 IN A 192.0.2.3",
		"example.org. 60 IN SOA ns.example.org. host.example.org. 1 2 3 4 30"} {
		rr, _ := dns.NewRR(s)
		x.Answer = append(x.Answer, rr)
	}
	xb, err := x.Pack()
	if err != nil {
		t.Fatal(err)
	}
	xc := append([]byte(nil), xb...)
	for range 20 {
		Rotate(xc)
		if string(xc) != string(xb) {
			t.Fatal("AXFR reply reordered")
		}
	}
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "www.example.org.", Rrtype: 1, Class: 1}}, &dns.A{Hdr: dns.RR_Header{Name: "www.example.org.", Rrtype: 1, Class: 1}}}
	m.Compress = true
	p, _ := m.Pack()
	if Rotate(p) {
		t.Error("a compressed message was rotated")
	}
}
