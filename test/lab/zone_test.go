package lab

import (
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// addrs returns the A/AAAA addresses and CNAME targets of r's answer section.
func addrs(r *dns.Msg) (ips []string, cnames []string) {
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			ips = append(ips, rr.A.String())
		case *dns.AAAA:
			ips = append(ips, rr.AAAA.String())
		case *dns.CNAME:
			cnames = append(cnames, rr.Target)
		}
	}
	return ips, cnames
}

func checkSOA(t *testing.T, r *dns.Msg, owner string) {
	t.Helper()
	if len(r.Ns) != 1 {
		t.Fatalf("authority %v, want one SOA", r.Ns)
	}
	soa, ok := r.Ns[0].(*dns.SOA)
	if !ok || soa.Hdr.Name != owner || soa.Hdr.Ttl != SOATTL || soa.Minttl != SOAMinimum {
		t.Fatalf("authority %v, want SOA %s TTL %d MINIMUM %d", r.Ns[0], owner, SOATTL, SOAMinimum)
	}
}

func TestZone(t *testing.T) {
	u := start(t, Config{TTL: 123})
	const ttl = 123
	tests := []struct {
		name   string
		qtype  uint16
		rcode  int
		ips    []string // nil: no addresses
		cnames []string
		ttl    uint32 // of the first answer, when there is one
		soa    string // owner of the SOA in authority, "" for none
	}{
		{name: "www.example.", qtype: dns.TypeA, ips: []string{AddrA("www.example.").String()}, ttl: ttl},
		{name: "www.example.", qtype: dns.TypeAAAA, ips: []string{AddrAAAA("www.example.").String()}, ttl: ttl},
		{name: "www.example.", qtype: dns.TypeMX, soa: "example."},
		{name: "loop.example.", qtype: dns.TypeA, ips: []string{"127.0.0.1"}, ttl: ttl},
		{name: "loopback.example.", qtype: dns.TypeAAAA, ips: []string{"::1"}, ttl: ttl},
		{name: "v4only.example.", qtype: dns.TypeA, ips: []string{AddrA("v4only.example.").String()}, ttl: ttl},
		{name: "v4only.example.", qtype: dns.TypeAAAA, soa: "example."},
		{name: "v6.example.", qtype: dns.TypeAAAA, ips: []string{AddrAAAA("v6.example.").String()}, ttl: ttl},
		{name: "v6.example.", qtype: dns.TypeA, soa: "example."},
		{name: "nodata.example.", qtype: dns.TypeA, soa: "example."},
		{name: "nodata-x.example.", qtype: dns.TypeAAAA, soa: "example."},
		{name: "nx.example.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: "example."},
		{name: "nxdomain.foo.org.", qtype: dns.TypeAAAA, rcode: dns.RcodeNameError, soa: "org."},
		{name: "nx.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: "."},
		{name: "servfail.example.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure},
		{name: "cname3-x.example.", qtype: dns.TypeA, ips: []string{AddrA("x.example.").String()}, ttl: ttl,
			cnames: []string{"cname2-x.example.", "cname1-x.example.", "x.example."}},
		{name: "cname1-v6.example.", qtype: dns.TypeAAAA, ips: []string{AddrAAAA("v6.example.").String()}, ttl: ttl,
			cnames: []string{"v6.example."}},
		{name: "cname2-nx.example.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: "example.", ttl: ttl,
			cnames: []string{"cname1-nx.example.", "nx.example."}},
		{name: "cname2-x.example.", qtype: dns.TypeCNAME, ttl: ttl, cnames: []string{"cname1-x.example."}},
		{name: "ttl4-x.example.", qtype: dns.TypeA, ips: []string{AddrA("ttl4-x.example.").String()}, ttl: 4},
		{name: "ttl0.example.", qtype: dns.TypeAAAA, ips: []string{AddrAAAA("ttl0.example.").String()}, ttl: 0},
	}
	for _, tc := range tests {
		for _, tr := range []string{"udp", "tcp", "tls"} {
			t.Run(tr+"/"+tc.name+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
				r := ask(t, u, tr, tc.name, tc.qtype)
				if r.Rcode != tc.rcode {
					t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				ips, cnames := addrs(r)
				if strings.Join(ips, " ") != strings.Join(tc.ips, " ") {
					t.Errorf("addresses %v, want %v", ips, tc.ips)
				}
				if strings.Join(cnames, " ") != strings.Join(tc.cnames, " ") {
					t.Errorf("CNAME targets %v, want %v", cnames, tc.cnames)
				}
				if len(r.Answer) > 0 && r.Answer[0].Header().Ttl != tc.ttl {
					t.Errorf("TTL %d, want %d", r.Answer[0].Header().Ttl, tc.ttl)
				}
				if tc.soa != "" {
					checkSOA(t, r, tc.soa)
				} else if len(r.Ns) != 0 {
					t.Errorf("authority %v, want none", r.Ns)
				}
			})
		}
	}
}

func TestZoneBig(t *testing.T) {
	u := start(t, Config{})
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r := ask(t, u, "tcp", "big.example.", qtype)
		ips, _ := addrs(r)
		seen := map[string]bool{}
		for _, ip := range ips {
			seen[ip] = true
		}
		if len(ips) != BigCount || len(seen) != BigCount {
			t.Errorf("%s: %d answers (%d distinct), want %d", dns.TypeToString[qtype], len(ips), len(seen), BigCount)
		}
	}
	// Over UDP without EDNS the answer does not fit in 512 bytes: TC set (RFC 1035 §4.2.1).
	if r := ask(t, u, "udp", "big.example.", dns.TypeAAAA); !r.Truncated {
		t.Errorf("UDP big answer without EDNS: TC not set (%d answers)", len(r.Answer))
	}
	m := new(dns.Msg)
	m.SetQuestion("big.example.", dns.TypeAAAA)
	m.SetEdns0(4096, false)
	c, addr := client(u, "udp")
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != BigCount {
		t.Errorf("UDP big answer with EDNS 4096: TC %v, %d answers", r.Truncated, len(r.Answer))
	}
}

func TestZoneCase(t *testing.T) {
	u := start(t, Config{})
	for _, name := range []string{"WwW.ExAmPlE.", "CNAME1-Host.Example."} {
		r := ask(t, u, "udp", name, dns.TypeA)
		if r.Question[0].Name != name || r.Answer[0].Header().Name != name {
			t.Errorf("question %q, owner %q: want the query's case %q", r.Question[0].Name, r.Answer[0].Header().Name, name)
		}
	}
	r := ask(t, u, "udp", "WWW.EXAMPLE.", dns.TypeA)
	if got := r.Answer[0].(*dns.A).A; !got.Equal(AddrA("www.example.")) {
		t.Errorf("address %v depends on case, want %v", got, AddrA("www.example."))
	}
	if n := u.Count("www.example"); n != 2 {
		t.Errorf("Count(www.example) = %d, want 2", n)
	}
}

func TestZoneEDNS(t *testing.T) {
	u := start(t, Config{IdleTimeout: 7 * 1e9})
	for _, tr := range []string{"udp", "tcp", "tls"} {
		m := new(dns.Msg)
		m.SetQuestion("www.example.", dns.TypeA)
		m.SetEdns0(1400, true)
		o := m.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE})
		c, addr := client(u, tr)
		r, _, err := c.Exchange(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		ro := r.IsEdns0()
		if ro == nil || ro.UDPSize() != 1400 || !ro.Do() {
			t.Fatalf("%s: OPT %v, want size 1400 and DO echoed", tr, ro)
		}
		var ka *dns.EDNS0_TCP_KEEPALIVE
		for _, e := range ro.Option {
			if k, ok := e.(*dns.EDNS0_TCP_KEEPALIVE); ok {
				ka = k
			}
		}
		switch {
		case tr == "udp" && ka != nil:
			t.Errorf("udp: edns-tcp-keepalive in a UDP reply (RFC 7828 §3.2.2)")
		case tr != "udp" && (ka == nil || ka.Timeout != 70):
			t.Errorf("%s: keepalive %v, want timeout 70 (7 s)", tr, ka)
		}
	}
	// No OPT in, none out.
	if r := ask(t, u, "udp", "www.example.", dns.TypeA); r.IsEdns0() != nil {
		t.Errorf("OPT in the reply to a query without EDNS")
	}
}

func TestZoneRecords(t *testing.T) {
	rr, _ := dns.NewRR("Fixed.Example. 42 IN A 192.0.2.7")
	u := start(t, Config{Records: map[string][]dns.RR{"fixed.example": {rr}}})
	r := ask(t, u, "udp", "fixed.example.", dns.TypeA)
	if len(r.Answer) != 1 || !r.Answer[0].(*dns.A).A.Equal(net.ParseIP("192.0.2.7")) || r.Answer[0].Header().Ttl != 42 {
		t.Errorf("override answer %v", r.Answer)
	}
	r = ask(t, u, "udp", "fixed.example.", dns.TypeAAAA)
	if len(r.Answer) != 0 || r.Rcode != dns.RcodeSuccess {
		t.Errorf("override AAAA: %v, want NODATA", r)
	}
	checkSOA(t, r, "example.")
}
