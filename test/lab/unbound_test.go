package lab

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestUnbound(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	u := start(t, Config{CA: ca})
	ub := StartUnbound(t, UnboundConfig{CA: ca, Upstream: u})

	c := &dns.Client{Net: "tcp-tls", TLSConfig: ca.ClientTLS(DefaultServerName), Timeout: 5 * time.Second}
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		ip    string
	}{
		{"host.example.", dns.TypeA, dns.RcodeSuccess, AddrA("host.example.").String()},
		{"host.example.", dns.TypeAAAA, dns.RcodeSuccess, AddrAAAA("host.example.").String()},
		{"cname2-y.example.", dns.TypeA, dns.RcodeSuccess, AddrA("y.example.").String()},
		{"nx.example.", dns.TypeA, dns.RcodeNameError, ""},
		{"www.lab.test.", dns.TypeA, dns.RcodeSuccess, AddrA("www.lab.test.").String()},
	} {
		m := new(dns.Msg)
		m.SetQuestion(tc.name, tc.qtype)
		r, _, err := c.Exchange(m, ub.TLSAddr())
		if err != nil {
			t.Fatalf("DoT %s: %v\n%s", tc.name, err, ub.Log())
		}
		ips, _ := addrs(r)
		got := ""
		if len(ips) > 0 {
			got = ips[len(ips)-1]
		}
		if r.Rcode != tc.rcode || got != tc.ip {
			t.Errorf("%s %s through unbound: %s %v, want %s %s", tc.name, dns.TypeToString[tc.qtype],
				dns.RcodeToString[r.Rcode], ips, dns.RcodeToString[tc.rcode], tc.ip)
		}
	}
	if n := u.Count("host.example."); n < 2 {
		t.Errorf("lab saw %d queries for host.example., want unbound's 2", n)
	}
}
