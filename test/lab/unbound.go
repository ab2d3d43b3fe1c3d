package lab

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/miekg/dns"
)

// UnboundBinary is Debian's unbound.
const UnboundBinary = kit.UnboundBinary

// UnboundConfig describes an unbound instance started by StartUnbound.
type UnboundConfig struct {
	CA       *CA       // signs unbound's DoT certificate (the CA's default server certificate)
	Upstream *Upstream // unbound forwards every name to this lab upstream over UDP
	Binary   string    // UnboundBinary when empty
	Extra    string    // extra lines for unbound.conf's server: clause
}

// Unbound is a running unbound: a real third-party DoT server on loopback (kit.Unbound).
type Unbound = kit.Unbound

// StartUnbound runs unbound (kit.StartUnbound) as a DoT server with the CA's certificate that
// forwards every name to cfg.Upstream over UDP, so that it needs no internet. It returns once
// unbound answers through the upstream; t.Cleanup stops it.
func StartUnbound(t testing.TB, cfg UnboundConfig) *Unbound {
	t.Helper()
	if cfg.CA == nil || cfg.Upstream == nil {
		t.Fatal("lab: StartUnbound needs a CA and an Upstream")
	}
	host, port, err := net.SplitHostPort(cfg.Upstream.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := cfg.CA.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	ub := kit.StartUnbound(t, kit.UnboundConfig{Binary: cfg.Binary, Forward: host + "@" + port,
		CertFile: filepath.Join(dir, CertFile), KeyFile: filepath.Join(dir, KeyFile), Extra: cfg.Extra})
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("unbound-ready.example.", dns.TypeA)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r, _, err := c.Exchange(m, ub.UDPAddr()); err == nil && r.Rcode == dns.RcodeSuccess {
			return ub
		}
		if time.Now().After(deadline) {
			t.Fatal(fmt.Errorf("lab: unbound at %s does not answer through the lab upstream:\n%s", ub.UDPAddr(), ub.Log()))
		}
	}
}
