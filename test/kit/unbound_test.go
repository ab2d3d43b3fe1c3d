package kit_test

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
)

// TestUnboundForwardTLS runs unbound forwarding over DNS-over-TLS to a lab upstream that it
// verifies with the lab's CA, and serving DoT itself with the CA's certificate.
func TestUnboundForwardTLS(t *testing.T) {
	ca := newCA(t)
	u := lab.StartTest(t, lab.Config{CA: ca})
	dir := t.TempDir()
	if err := ca.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(u.TLSAddr())
	ub := kit.StartUnbound(t, kit.UnboundConfig{
		Forward: host + "@" + port + "#" + lab.DefaultServerName, ForwardTLS: true,
		CABundle: filepath.Join(dir, lab.CAFile),
		CertFile: filepath.Join(dir, lab.CertFile), KeyFile: filepath.Join(dir, lab.KeyFile),
	})
	m := new(dns.Msg)
	m.SetQuestion("tls-forwarded.example.", dns.TypeA)
	for _, c := range []*dns.Client{
		{Net: "udp", Timeout: 5 * time.Second},
		{Net: "tcp-tls", Timeout: 5 * time.Second, TLSConfig: ca.ClientTLS(lab.DefaultServerName)},
	} {
		addr := map[string]string{"udp": ub.UDPAddr(), "tcp-tls": ub.TLSAddr()}[c.Net]
		r, _, err := c.Exchange(m, addr)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%s: %v %v\n%s", c.Net, r, err, ub.Log())
		}
	}
	if st := u.Stats(); st.QueriesTLS == 0 || st.QueriesUDP != 0 {
		t.Errorf("the lab saw %d queries over DoT and %d over UDP; want all over DoT", st.QueriesTLS, st.QueriesUDP)
	}
}
