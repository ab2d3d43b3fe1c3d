package kit

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
)

// UnboundBinary is Debian's unbound.
const UnboundBinary = "/usr/sbin/unbound"

// UnboundConfig describes an unbound started by StartUnbound: a forwarding resolver with no
// DNSSEC validation, so that it needs no internet.
type UnboundConfig struct {
	Binary string // UnboundBinary when empty
	// Forward is where unbound sends every name (forward-addr): "127.0.0.1@5300", or with
	// ForwardTLS "127.0.0.1@853#name", the name the upstream's certificate must hold, which
	// CABundle (a PEM file) signs.
	Forward    string
	ForwardTLS bool
	CABundle   string
	// CertFile and KeyFile (PEM) make unbound serve DNS-over-TLS too, on TLSAddr.
	CertFile, KeyFile string
	Extra             string // extra lines for unbound.conf's server: clause
}

// Unbound is a running unbound on loopback.
type Unbound struct {
	udp, tls string
	proc     *Process
}

var unboundConf = template.Must(template.New("unbound.conf").Parse(`server:
	verbosity: 1
	num-threads: 1
	interface: 127.0.0.1@{{.Port}}
{{- if .TLSPort}}
	interface: 127.0.0.1@{{.TLSPort}}
	tls-port: {{.TLSPort}}
	tls-service-key: "{{.KeyFile}}"
	tls-service-pem: "{{.CertFile}}"
{{- end}}
	port: {{.Port}}
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
{{- if .CABundle}}
	tls-cert-bundle: "{{.CABundle}}"
{{- end}}
	# RFC 6761 names are local zones by default; the upstreams of the tests answer them.
	local-zone: "test." nodefault
	local-zone: "invalid." nodefault
{{.Extra}}
remote-control:
	control-enable: no

forward-zone:
	name: "."
{{- if .ForwardTLS}}
	forward-tls-upstream: yes
{{- end}}
	forward-addr: {{.Forward}}
`))

// StartUnbound runs unbound in the foreground (-d) with a generated configuration in
// t.TempDir() on free loopback ports. It returns once unbound accepts TCP on its ports;
// t.Cleanup stops it.
func StartUnbound(t testing.TB, cfg UnboundConfig) *Unbound {
	t.Helper()
	if cfg.Forward == "" {
		t.Fatal("kit: StartUnbound needs Forward")
	}
	bin := cfg.Binary
	if bin == "" {
		bin = UnboundBinary
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kit: unbound: %v (install Debian's unbound: make deps)", err)
	}
	dir := t.TempDir()
	var last error
	for range 3 { // the free ports may be taken between probing and unbound's bind
		port, tlsPort := FreePort(t), 0
		if cfg.CertFile != "" {
			tlsPort = FreePort(t)
		}
		var conf bytes.Buffer
		if err := unboundConf.Execute(&conf, struct {
			UnboundConfig
			Port, TLSPort int
			Dir           string
		}{cfg, port, tlsPort, dir}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "unbound.conf")
		if err := os.WriteFile(path, conf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		ub := &Unbound{udp: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if tlsPort != 0 {
			ub.tls = net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
		}
		var err error
		if ub.proc, err = StartProcess("unbound", dir, bin, "-d", "-c", path); err != nil {
			t.Fatal(err)
		}
		if last = ub.wait(10 * time.Second); last == nil {
			t.Cleanup(func() { ub.Close() })
			return ub
		}
		ub.Close()
	}
	t.Fatalf("kit: unbound did not start: %v", last)
	return nil
}

// wait returns once unbound accepts TCP on its DNS port and, with DoT, on its TLS port.
func (ub *Unbound) wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if exited, err := ub.proc.Exited(); exited {
			return fmt.Errorf("unbound exited (%v):\n%s", err, ub.Log())
		}
		if accepts(ub.udp) && (ub.tls == "" || accepts(ub.tls)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("unbound not listening on %s after %v:\n%s", ub.udp, timeout, ub.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// UDPAddr returns unbound's plain DNS address (UDP and TCP).
func (ub *Unbound) UDPAddr() string { return ub.udp }

// TLSAddr returns unbound's DNS-over-TLS address, or "" without CertFile.
func (ub *Unbound) TLSAddr() string { return ub.tls }

// PID returns unbound's process id.
func (ub *Unbound) PID() int { return ub.proc.PID() }

// Log returns what unbound printed.
func (ub *Unbound) Log() string { return ub.proc.Log() }

// Close stops unbound (SIGTERM, then SIGKILL after 5 s) and waits for it. It returns an
// error when unbound did not stop in time or exited non-zero.
func (ub *Unbound) Close() error { return ub.proc.Stop(5 * time.Second) }
