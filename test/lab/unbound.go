package lab

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"text/template"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/miekg/dns"
)

// UnboundBinary is Debian's unbound.
const UnboundBinary = "/usr/sbin/unbound"

// UnboundConfig describes an unbound instance started by StartUnbound.
type UnboundConfig struct {
	CA       *CA       // signs unbound's DoT certificate (the CA's default server certificate)
	Upstream *Upstream // unbound forwards every name to this lab upstream over UDP
	Binary   string    // UnboundBinary when empty
	Extra    string    // extra lines for unbound.conf's server: clause
}

// Unbound is a running unbound: a real third-party DoT server on loopback.
type Unbound struct {
	udp, tls string
	proc     *kit.Process
}

var unboundConf = template.Must(template.New("unbound.conf").Parse(`server:
	verbosity: 1
	num-threads: 1
	interface: 127.0.0.1@{{.UDPPort}}
	interface: 127.0.0.1@{{.TLSPort}}
	port: {{.UDPPort}}
	tls-port: {{.TLSPort}}
	tls-service-key: "{{.Dir}}/key.pem"
	tls-service-pem: "{{.Dir}}/cert.pem"
	do-ip6: no
	do-daemonize: no
	chroot: ""
	username: ""
	directory: "{{.Dir}}"
	pidfile: ""
	logfile: ""
	use-syslog: no
	module-config: "iterator"
	do-not-query-localhost: no
	qname-minimisation: no
	access-control: 127.0.0.0/8 allow
	so-reuseport: no
	# RFC 6761 names are local zones by default; the lab answers them.
	local-zone: "test." nodefault
	local-zone: "invalid." nodefault
{{.Extra}}
remote-control:
	control-enable: no

forward-zone:
	name: "."
	forward-addr: 127.0.0.1@{{.UpstreamPort}}
`))

// StartUnbound runs unbound in the foreground (-d) with a generated configuration in
// t.TempDir(): DoT and plain UDP/TCP on free loopback ports, the CA's certificate, no DNSSEC
// validation and every name forwarded to cfg.Upstream, so it needs no internet. It returns
// once unbound answers; t.Cleanup stops it.
func StartUnbound(t testing.TB, cfg UnboundConfig) *Unbound {
	t.Helper()
	if cfg.CA == nil || cfg.Upstream == nil {
		t.Fatal("lab: StartUnbound needs a CA and an Upstream")
	}
	bin := cfg.Binary
	if bin == "" {
		bin = UnboundBinary
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("lab: unbound: %v (install Debian's unbound: make deps)", err)
	}
	_, upPort, err := net.SplitHostPort(cfg.Upstream.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := cfg.CA.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	var last error
	for range 3 { // the free ports may be taken between probing and unbound's bind
		udpPort, err := kit.Port()
		if err != nil {
			t.Fatal(err)
		}
		tlsPort, err := kit.Port()
		if err != nil {
			t.Fatal(err)
		}
		var conf bytes.Buffer
		unboundConf.Execute(&conf, map[string]string{"UDPPort": strconv.Itoa(udpPort), "TLSPort": strconv.Itoa(tlsPort),
			"Dir": dir, "UpstreamPort": upPort, "Extra": cfg.Extra})
		path := filepath.Join(dir, "unbound.conf")
		if err := os.WriteFile(path, conf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		ub := &Unbound{udp: net.JoinHostPort("127.0.0.1", strconv.Itoa(udpPort)), tls: net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))}
		if ub.proc, err = kit.StartProcess("unbound", dir, bin, "-d", "-c", path); err != nil {
			t.Fatal(err)
		}
		if last = ub.wait(10 * time.Second); last == nil {
			t.Cleanup(func() { ub.Close() })
			return ub
		}
		ub.Close()
	}
	t.Fatalf("lab: unbound did not start: %v", last)
	return nil
}

// wait returns once unbound answers over UDP and accepts TCP on its DoT port.
func (ub *Unbound) wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("unbound-ready.example.", dns.TypeA)
	for {
		if exited, err := ub.proc.Exited(); exited {
			return fmt.Errorf("unbound exited (%v):\n%s", err, ub.Log())
		}
		if r, _, err := c.Exchange(m, ub.udp); err == nil && r.Rcode == dns.RcodeSuccess {
			if conn, err := net.DialTimeout("tcp", ub.tls, time.Second); err == nil {
				conn.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("unbound not answering on %s after %v:\n%s", ub.udp, timeout, ub.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// UDPAddr returns unbound's plain DNS address (UDP and TCP).
func (ub *Unbound) UDPAddr() string { return ub.udp }

// TLSAddr returns unbound's DNS-over-TLS address.
func (ub *Unbound) TLSAddr() string { return ub.tls }

// Log returns what unbound printed.
func (ub *Unbound) Log() string { return ub.proc.Log() }

// Close stops unbound (SIGTERM, then SIGKILL after 5 s) and waits for it. It returns an
// error when unbound did not stop in time or exited non-zero.
func (ub *Unbound) Close() error { return ub.proc.Stop(5 * time.Second) }
