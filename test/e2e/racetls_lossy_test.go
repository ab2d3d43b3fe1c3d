//go:build linux

package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/dnscache/dnscache/test/lossy"
	"github.com/miekg/dns"
)

// TestRacetlsLossyLink: bin/coredns with racetls, in one network namespace, asks a lab
// upstream in another across a link that drops 5 % of packets each way (test/lossy), over
// each transport alone: DoT, DoQ and DoH recover every loss (TCP and QUIC retransmit, racetls
// re-dials and re-sends), so every query is answered; plain DNS over UDP has no
// retransmission below racetls, so a lost datagram costs the query unless racetls asks again.
func TestRacetlsLossyLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and TUN devices need root (make test runs as root)")
	}
	bin := kit.Binary(t)
	l, err := lossy.Start(lossy.Config{Loss: 0.05, Delay: 5 * time.Millisecond, Jitter: time.Millisecond, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	var up *lab.Upstream
	far := l.FarIP
	// The lab's sockets are opened inside the far namespace.
	if err := l.Far.Do(func() error {
		var err error
		up, err = lab.Start(lab.Config{CA: ca, Latency: labLatency(time.Millisecond),
			UDP: far + ":53", TCP: far + ":53", TLS: far + ":853", DoQ: far + ":853", DoH: far + ":443"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer up.Close()

	const n = 200
	for _, tc := range []struct {
		scheme, to string
		all        bool // every query must be answered
	}{
		{"tls", "tls://" + far + ":853%" + lab.DefaultServerName, true},
		{"quic", "quic://" + far + ":853%" + lab.DefaultServerName, true},
		{"https", "https://" + far + ":443%" + lab.DefaultServerName, true},
		{"dns", "dns://" + far + ":53", false},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			s := kit.Prepare(t)
			s.Bin = bin
			s.Wrap = l.Near.Wrap()
			if err := ca.WriteFiles(s.Dir); err != nil {
				t.Fatal(err)
			}
			// No ready plugin: its port would be inside the namespace.
			s.Run(t, fmt.Sprintf(".:{{.Port}} {\n    bind 127.0.0.1\n    unixsock {{.Sock}}\n    racetls . %s {\n        tls {{.CA}}\n    }\n}\n", tc.to))
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if _, err := os.Stat(s.Sock); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no socket %s:\n%s", s.Sock, s.Log())
				}
			}
			f0, n0 := l.Stats()
			res, err := kit.Load{
				Network: "unix", Addr: s.Sock, Conns: 1, InFlight: 20, Count: n, Timeout: 5 * time.Second,
				Next: func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("%s-%d.example.", tc.scheme, i)} },
			}.Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			f1, n1 := l.Stats()
			drops := f1.Dropped - f0.Dropped + n1.Dropped - n0.Dropped
			ok := res.Rcodes[dns.RcodeSuccess]
			t.Logf("%s: %d of %d NOERROR, rcodes %v, timeouts %d; link dropped %d of %d packets", tc.scheme, ok, n,
				res.Rcodes, res.Timeouts, drops, f1.Packets-f0.Packets+n1.Packets-n0.Packets)
			if drops == 0 {
				t.Fatal("the link dropped nothing: the test shows nothing")
			}
			switch {
			case tc.all && ok != n:
				t.Errorf("%s: %d of %d queries answered across the lossy link; every loss should be recovered", tc.scheme, ok, n)
			case !tc.all && ok < n/2:
				t.Errorf("%s: only %d of %d queries answered", tc.scheme, ok, n)
			}
			if res.Rcodes[dns.RcodeSuccess]+res.Rcodes[dns.RcodeServerFailure] != res.Sent-res.Timeouts-res.Failed {
				t.Errorf("unexpected rcodes %v", res.Rcodes)
			}
		})
	}
}
