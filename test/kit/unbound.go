package kit

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
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
	Extra             string   // extra lines for unbound.conf's server: clause
	Wrap              []string // put before the binary on the command line (e.g. taskset -c 0)
}

// Unbound is a running unbound on loopback.
type Unbound struct {
	udp, tls string
	*Process
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
	return started[*Unbound](t)(LaunchUnbound(t.TempDir(), cfg))
}

// LaunchUnbound is StartUnbound for programs (make bench): its configuration goes into dir,
// which the caller removes, and the caller stops it with Close.
func LaunchUnbound(dir string, cfg UnboundConfig) (*Unbound, error) {
	if cfg.Forward == "" {
		return nil, errors.New("kit: LaunchUnbound needs Forward")
	}
	bin, err := debianBinary(cfg.Binary, UnboundBinary, "unbound")
	if err != nil {
		return nil, err
	}
	var last error
	for range 3 { // the free ports may be taken between probing and unbound's bind
		port, err := Port()
		if err != nil {
			return nil, err
		}
		ub := &Unbound{udp: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		tlsPort := 0
		if cfg.CertFile != "" {
			if tlsPort, err = Port(); err != nil {
				return nil, err
			}
			ub.tls = net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
		}
		var conf bytes.Buffer
		if err := unboundConf.Execute(&conf, struct {
			UnboundConfig
			Port, TLSPort int
			Dir           string
		}{cfg, port, tlsPort, dir}); err != nil {
			return nil, err
		}
		path := filepath.Join(dir, "unbound.conf")
		if err := os.WriteFile(path, conf.Bytes(), 0o644); err != nil {
			return nil, err
		}
		if ub.Process, err = StartProcess("unbound", dir, append(slices.Clip(cfg.Wrap), bin, "-d", "-c", path)...); err != nil {
			return nil, err
		}
		// Ready once unbound accepts TCP on its DNS port and, with DoT, on its TLS port.
		if last = ub.Await(10*time.Second, func() bool {
			return accepts(ub.udp) && (ub.tls == "" || accepts(ub.tls))
		}); last == nil {
			return ub, nil
		}
		ub.Close()
	}
	return nil, fmt.Errorf("kit: unbound did not start: %w", last)
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

// Close stops unbound (SIGTERM, then SIGKILL after 5 s) and waits for it. It returns an
// error when unbound did not stop in time or exited non-zero.
func (ub *Unbound) Close() error { return ub.Stop(5 * time.Second) }
