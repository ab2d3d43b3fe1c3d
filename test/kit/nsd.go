package kit

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
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
	*Process
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
	bin, err := debianBinary(cfg.Binary, NSDBinary, "nsd")
	if err != nil {
		t.Fatal(err)
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
		port, tlsPort := FreePort(t), 0
		if cfg.TLSCert != "" {
			for tlsPort == 0 || tlsPort == port {
				tlsPort = FreePort(t)
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
		n := &NSD{udp: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
		if tlsPort != 0 {
			n.tls = net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
		}
		var err error
		if n.Process, err = StartProcess("nsd", dir, bin, "-d", "-c", path); err != nil {
			t.Fatal(err)
		}
		if last = n.Await(10*time.Second, func() bool { return n.serves(zones[0].Origin) }); last == nil {
			t.Cleanup(func() { n.Close() })
			return n
		}
		n.Close()
		last = fmt.Errorf("%w\n%s", last, n.fileLog())
	}
	t.Fatalf("kit: nsd did not start: %v", last)
	return nil
}

// serves reports whether NSD answers origin's SOA authoritatively over UDP and, with TLS,
// accepts TCP on its TLS port.
func (n *NSD) serves(origin string) bool {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(origin, dns.TypeSOA)
	r, _, err := c.Exchange(m, n.udp)
	if err != nil || r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		return false
	}
	return n.tls == "" || accepts(n.tls)
}

// Addr returns NSD's plain DNS address (UDP and TCP), "127.0.0.1:port".
func (n *NSD) Addr() string { return n.udp }

// TLSAddr returns NSD's DNS-over-TLS address, or "" when it serves no TLS.
func (n *NSD) TLSAddr() string { return n.tls }

// Log returns what NSD wrote to its log file and its output.
func (n *NSD) Log() string { return n.fileLog() + n.Process.Log() }

func (n *NSD) fileLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "nsd.log"))
	return string(b)
}

// DialTLS opens a DNS-over-TLS connection to NSD, for tests that query it directly.
func (n *NSD) DialTLS(cfg *tls.Config) (*dns.Conn, error) {
	return dns.DialTimeoutWithTLS("tcp-tls", n.tls, cfg, 2*time.Second)
}

// Close stops NSD (SIGTERM to its PID, SIGKILL after 5 s) and waits for it.
func (n *NSD) Close() error { return n.Stop(5 * time.Second) }
