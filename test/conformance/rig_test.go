package conformance

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
)

// tlsName is the name on NSD's DoT certificate that every resolver verifies.
const tlsName = "nsd.conf.test"

// The resolvers, in report order. dnscache is the system under test, stock the reference
// it is held to (the drop-in promise); unbound and kresd are reported.
const (
	dnscache = "dnscache"
	stock    = "stock"
	unbound  = "unbound"
	kresd    = "kresd"
)

var resolvers = []string{dnscache, stock, unbound, kresd}

// rig is NSD and the four resolvers in front of it.
type rig struct {
	nsd   *kit.NSD
	addr  map[string]string // resolver -> "127.0.0.1:port" (UDP and TCP)
	cache *kit.CoreDNS      // dnscache's bin/coredns, for its metrics
}

func startRig(t *testing.T) *rig {
	t.Helper()
	ca, err := lab.NewCA(tlsName)
	if err != nil {
		t.Fatal(err)
	}
	certDir := t.TempDir()
	if err := ca.WriteFiles(certDir); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(certDir, lab.CAFile)
	nsd := kit.StartNSD(t, kit.NSDConfig{
		Zones:   []kit.NSDZone{{Origin: zoneOrigin, Data: confZone()}, {Origin: otherOrigin, Data: otherZone}},
		TLSCert: filepath.Join(certDir, lab.CertFile),
		TLSKey:  filepath.Join(certDir, lab.KeyFile),
		NSID:    nsdNSID,
	})
	_, tlsPort, _ := net.SplitHostPort(nsd.TLSAddr())
	r := &rig{nsd: nsd, addr: map[string]string{}}

	set := func(name, addr string) { r.addr[name] = addr }
	// Started one after the other: kit.Start fails the test from its own goroutine only.
	r.cache = kit.Start(t, `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    warmcache
    racetls . tls://`+nsd.TLSAddr()+`%`+tlsName+` {
        tls `+caFile+`
    }
}
`)
	set(dnscache, r.cache.DNS)
	s := kit.Start(t, `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    cache
    forward . tls://`+nsd.TLSAddr()+` {
        tls_servername `+tlsName+`
        tls `+caFile+`
    }
}
`)
	set(stock, s.DNS)
	set(unbound, startUnbound(t, caFile, tlsPort))
	k := kit.StartKresd(t, kit.KresdConfig{TLSForward: []string{"127.0.0.1@" + tlsPort}, Hostname: tlsName, CAFile: caFile})
	set(kresd, k.Addr())
	// Every resolver must reach NSD over DoT before the cases start.
	for _, name := range resolvers {
		waitAnswer(t, name, r.addr[name])
	}
	return r
}

func waitAnswer(t *testing.T, name, addr string) {
	t.Helper()
	c := &dns.Client{Timeout: time.Second}
	m := new(dns.Msg)
	m.SetQuestion("ready.wild.conf.test.", dns.TypeA)
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, _, err := c.Exchange(m, addr)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s at %s does not resolve through NSD over DoT: %v %v", name, addr, r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startUnbound runs Debian's unbound in the foreground, forwarding every name to NSD over DoT
// (forward-tls-upstream), with no DNSSEC validation. It returns its UDP/TCP address.
func startUnbound(t *testing.T, caFile, tlsPort string) string {
	t.Helper()
	if _, err := os.Stat(lab.UnboundBinary); err != nil {
		t.Fatalf("unbound: %v (make deps)", err)
	}
	dir := t.TempDir()
	for range 3 {
		port := kit.FreePort(t)
		conf := fmt.Sprintf(`server:
	verbosity: 1
	num-threads: 1
	interface: 127.0.0.1@%[1]d
	port: %[1]d
	do-ip6: no
	do-daemonize: no
	chroot: ""
	username: ""
	directory: "%[2]s"
	pidfile: ""
	logfile: ""
	use-syslog: no
	module-config: "iterator"
	do-not-query-localhost: no
	qname-minimisation: no
	access-control: 127.0.0.0/8 allow
	so-reuseport: no
	tls-cert-bundle: "%[3]s"
	local-zone: "test." nodefault
remote-control:
	control-enable: no
forward-zone:
	name: "."
	forward-tls-upstream: yes
	forward-addr: 127.0.0.1@%[4]s#%[5]s
`, port, dir, caFile, tlsPort, tlsName)
		path := filepath.Join(dir, "unbound.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		var out lockedBuffer
		cmd := exec.Command(lab.UnboundBinary, "-d", "-c", path)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		stop := func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		deadline := time.Now().Add(10 * time.Second)
		for {
			select {
			case <-done:
				t.Logf("unbound exited: %s", out.String())
			default:
				conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
				if err == nil {
					conn.Close()
					t.Cleanup(stop)
					return addr
				}
				if time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				stop()
			}
			break
		}
	}
	t.Fatal("unbound did not start")
	return ""
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
