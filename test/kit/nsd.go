package kit

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/miekg/dns"
)

// NSDBinary is Debian's NSD.
const NSDBinary = "/usr/sbin/nsd"

// NSDZone is one zone NSD serves: its origin and the text of its master file.
type NSDZone struct {
	Origin string // "example.test."
	Data   string // RFC 1035 master file; $ORIGIN is set to Origin
}

// NSDConfig describes an NSD started by StartNSD.
type NSDConfig struct {
	Zones []NSDZone
	// TLS, when set, makes NSD serve DNS-over-TLS (RFC 7858) on a second port with this
	// certificate and key (PEM files), e.g. lab.CA.WriteFiles's cert.pem and key.pem.
	TLSCert, TLSKey string
	NSID            string // hex, served to queries with an NSID option (RFC 5001); "" for none
	Identity        string // answer to id.server CH TXT; "nsd" when empty
	Extra           string // extra lines for nsd.conf's server: clause
	Binary          string // NSDBinary when empty
}

// NSD is a running NSD authoritative server on loopback, in the foreground, without root.
type NSD struct {
	udp, tls string // "127.0.0.1:port"; tls is "" without TLS
	dir      string
	cmd      *exec.Cmd
	out      *nsdBuffer
	done     chan struct{}
	once     sync.Once
}

var nsdConf = template.Must(template.New("nsd.conf").Parse(`server:
	ip-address: 127.0.0.1@{{.Port}}
{{- if .TLSPort}}
	ip-address: 127.0.0.1@{{.TLSPort}}
	tls-port: {{.TLSPort}}
	tls-service-key: "{{.Key}}"
	tls-service-pem: "{{.Cert}}"
{{- end}}
	port: {{.Port}}
	do-ip6: no
	server-count: 1
	tcp-count: 64
	username: ""
	chroot: ""
	zonesdir: "{{.Dir}}"
	database: ""
	zonelistfile: "{{.Dir}}/zone.list"
	xfrdfile: "{{.Dir}}/xfrd.state"
	xfrdir: "{{.Dir}}"
	pidfile: "{{.Dir}}/nsd.pid"
	logfile: "{{.Dir}}/nsd.log"
	verbosity: 1
	identity: "{{.Identity}}"
	hide-version: no
	reuseport: no
{{- if .NSID}}
	nsid: "{{.NSID}}"
{{- end}}
{{.Extra}}
remote-control:
	control-enable: no
{{range .Zones}}
zone:
	name: "{{.Origin}}"
	zonefile: "{{.File}}"
{{end}}`))

// StartNSD writes the zones and a configuration into t.TempDir() and runs NSD in the
// foreground (-d) on free loopback ports. It returns once NSD answers the first zone's SOA over
// UDP (and accepts TCP on the TLS port, if any); t.Cleanup stops it by its PID.
func StartNSD(t testing.TB, cfg NSDConfig) *NSD {
	t.Helper()
	bin := cfg.Binary
	if bin == "" {
		bin = NSDBinary
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kit: nsd: %v (install Debian's nsd: make deps)", err)
	}
	if len(cfg.Zones) == 0 {
		t.Fatal("kit: StartNSD needs a zone")
	}
	dir := t.TempDir()
	type zone struct{ Origin, File string }
	var zones []zone
	for i, z := range cfg.Zones {
		file := filepath.Join(dir, fmt.Sprintf("zone%d.db", i))
		data := "$ORIGIN " + dns.Fqdn(z.Origin) + "\n" + z.Data
		if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		zones = append(zones, zone{dns.Fqdn(z.Origin), file})
	}
	identity := cfg.Identity
	if identity == "" {
		identity = "nsd"
	}
	var last error
	for range 3 { // a free port may be taken between probing and NSD's bind
		port, tlsPort := nsdFreePort(t), 0
		if cfg.TLSCert != "" {
			for tlsPort == 0 || tlsPort == port {
				tlsPort = nsdFreePort(t)
			}
		}
		var conf bytes.Buffer
		if err := nsdConf.Execute(&conf, map[string]any{"Port": port, "TLSPort": tlsPort,
			"Key": cfg.TLSKey, "Cert": cfg.TLSCert, "Dir": dir, "Identity": identity,
			"NSID": cfg.NSID, "Extra": cfg.Extra, "Zones": zones}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "nsd.conf")
		if err := os.WriteFile(path, conf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		n := &NSD{udp: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir,
			out: &nsdBuffer{}, done: make(chan struct{})}
		if tlsPort != 0 {
			n.tls = net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
		}
		n.cmd = exec.Command(bin, "-d", "-c", path)
		n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { n.cmd.Wait(); close(n.done) }()
		if last = n.wait(zones[0].Origin, 10*time.Second); last == nil {
			t.Cleanup(func() { n.Close() })
			return n
		}
		n.Close()
	}
	t.Fatalf("kit: nsd did not start: %v", last)
	return nil
}

func (n *NSD) wait(origin string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(origin, dns.TypeSOA)
	for {
		select {
		case <-n.done:
			return fmt.Errorf("nsd exited (%v):\n%s%s", n.cmd.ProcessState, n.out.String(), n.Log())
		default:
		}
		if r, _, err := c.Exchange(m, n.udp); err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative {
			if n.tls == "" {
				return nil
			}
			if conn, err := net.DialTimeout("tcp", n.tls, time.Second); err == nil {
				conn.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nsd not answering %s SOA on %s after %v:\n%s%s", origin, n.udp, timeout, n.out.String(), n.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Addr returns NSD's plain DNS address (UDP and TCP), "127.0.0.1:port".
func (n *NSD) Addr() string { return n.udp }

// TLSAddr returns NSD's DNS-over-TLS address, or "" when it serves no TLS.
func (n *NSD) TLSAddr() string { return n.tls }

// PID returns NSD's process id.
func (n *NSD) PID() int { return n.cmd.Process.Pid }

// Log returns what NSD wrote to its log file and its output.
func (n *NSD) Log() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "nsd.log"))
	return string(b) + n.out.String()
}

// DialTLS opens a DNS-over-TLS connection to NSD, for tests that query it directly.
func (n *NSD) DialTLS(cfg *tls.Config) (*dns.Conn, error) {
	return dns.DialTimeoutWithTLS("tcp-tls", n.tls, cfg, 2*time.Second)
}

// Close stops NSD (SIGTERM to its PID, SIGKILL after 5 s) and waits for it.
func (n *NSD) Close() error {
	n.once.Do(func() {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			n.cmd.Process.Kill()
			<-n.done
		}
	})
	return nil
}

// nsdFreePort returns a loopback port free for both TCP and UDP at the time of the call.
func nsdFreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	t.Fatal("kit: no free port for TCP and UDP")
	return 0
}

// nsdBuffer is a bytes.Buffer safe for a child's writers and the test's readers.
type nsdBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *nsdBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *nsdBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
