package lab

import (
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, cfg Config) *Upstream {
	t.Helper()
	return StartTest(t, cfg)
}

// client returns a miekg/dns client for transport "udp", "tcp" or "tls".
func client(u *Upstream, transport string) (*dns.Client, string) {
	c := &dns.Client{Timeout: 2 * time.Second}
	switch transport {
	case "tcp":
		c.Net = "tcp"
		return c, u.TCPAddr()
	case "tls":
		c.Net = "tcp-tls"
		c.TLSConfig = u.ClientTLS()
		return c, u.TLSAddr()
	}
	c.Net = "udp"
	return c, u.UDPAddr()
}

// ask sends one query over transport and fails the test on an exchange error.
func ask(t *testing.T, u *Upstream, transport, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c, addr := client(u, transport)
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", transport, name, dns.TypeToString[qtype], err)
	}
	return r
}
