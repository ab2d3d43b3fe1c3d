package conformance

import (
	"net"
	"path/filepath"
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
	u := kit.StartUnbound(t, kit.UnboundConfig{Forward: "127.0.0.1@" + tlsPort + "#" + tlsName, ForwardTLS: true, CABundle: caFile})
	set(unbound, u.UDPAddr())
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
