package harness

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestServerLifecycle runs bin/coredns with stock plugins, queries it with kdig, dig and the
// Go client, scrapes a metric, reloads it and stops it.
func TestServerLifecycle(t *testing.T) {
	CheckFDs(t)
	const corefile = `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    whoami
}
`
	s := Start(t, corefile)
	if out := s.Kdig(t, "+tcp", "example.org", "A"); !strings.Contains(out, "status: NOERROR") {
		t.Errorf("kdig:\n%s", out)
	}
	if out := s.Dig(t, "example.org", "A"); !strings.Contains(out, "status: NOERROR") {
		t.Errorf("dig:\n%s", out)
	}
	m := new(dns.Msg)
	m.SetQuestion("example.org.", dns.TypeA)
	if r := s.Exchange(t, m, "udp"); r.Rcode != dns.RcodeSuccess || len(r.Extra) == 0 {
		t.Errorf("exchange: %v", r)
	}
	if n := s.Metric(t, "coredns_dns_requests_total", map[string]string{"proto": "udp"}); n < 2 {
		t.Errorf("coredns_dns_requests_total{proto=udp} = %v, want >= 2", n)
	}
	s.Reload(t, corefile+"# reloaded\n")
	if r := s.Exchange(t, m, "tcp"); r.Rcode != dns.RcodeSuccess {
		t.Errorf("exchange after reload: %v", r)
	}
	s.Stop(t)
}
