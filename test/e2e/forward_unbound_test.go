package e2e

import (
	"strings"
	"testing"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// TestStockForwardToUnboundDoT resolves through bin/coredns with stock `forward . tls://` to
// Debian's unbound serving DoT with the lab CA, queried by kdig over UDP and TCP. unbound
// resolves through a lab upstream, so no internet is needed.
func TestStockForwardToUnboundDoT(t *testing.T) {
	kit.CheckFDs(t)
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	up, err := lab.Start(lab.Config{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	ub := lab.StartUnbound(t, lab.UnboundConfig{CA: ca, Upstream: up})

	s := kit.Prepare(t)
	if err := ca.WriteFiles(s.Dir); err != nil {
		t.Fatal(err)
	}
	s.Run(t, `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    forward . tls://`+ub.TLSAddr()+` {
        tls_servername `+ca.Names()[0]+`
        tls {{.CA}}
    }
}
`)
	out := s.Kdig(t, "www.example.com", "A")
	if !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, lab.AddrA("www.example.com.").String()) {
		t.Fatalf("kdig A over UDP:\n%s", out)
	}
	out = s.Kdig(t, "+tcp", "nx-gone.example.com", "AAAA")
	if !strings.Contains(out, "status: NXDOMAIN") {
		t.Fatalf("kdig AAAA over TCP:\n%s", out)
	}
	if got := up.Count("www.example.com."); got == 0 {
		t.Errorf("lab upstream saw no query for www.example.com. through unbound")
	}
	labels := map[string]string{"proxy_name": "forward", "to": ub.TLSAddr()}
	if n := s.Metric(t, "coredns_proxy_request_duration_seconds", labels); n < 2 {
		t.Errorf("coredns_proxy_request_duration_seconds%v count = %v, want >= 2", labels, n)
	}
	s.Stop(t)
}
