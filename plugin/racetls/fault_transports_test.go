package racetls

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/lab"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestFaultsPerTransport is TestFaults for the transports other than DoT: the lab serves the
// faulty upstream over DoQ, DoH or plain DNS (UDP) and a healthy one over DoT. The faulty
// upstream is listed first and is the faster one, and only one upstream is asked at first
// (race 1), so every query exercises escalation. No fault reaches the client, the faulty
// upstream was asked, and when the fault hits every query it never wins a race; the error
// kinds that name the fault are counted.
func TestFaultsPerTransport(t *testing.T) {
	type fcase struct {
		f    lab.Fault
		kind string // the error kind this fault must be counted as, "" when not checked
	}
	common := []fcase{
		{f: lab.Fault{Kind: lab.Reset}},
		{f: lab.Fault{Kind: lab.Reset, Prob: 0.3}},
		{f: lab.Fault{Kind: lab.BlackHole}},
		{f: lab.Fault{Kind: lab.Garbage}},
		{f: lab.Fault{Kind: lab.WrongID}},
		{f: lab.Fault{Kind: lab.WrongQuestion}},
		{f: lab.Fault{Kind: lab.ServFail}, kind: "servfail"},
		{f: lab.Fault{Kind: lab.Refused}, kind: "refused"},
	}
	streams := []fcase{{f: lab.Fault{Kind: lab.IdleClose, After: 150 * time.Millisecond}}}
	transports := []struct {
		scheme string
		faults []fcase
	}{
		{"quic", append(append([]fcase{{f: lab.Fault{Kind: lab.Reset, Prob: 0.5}, kind: kindReset}}, common...), streams...)},
		{"https", append(append([]fcase{
			{f: lab.Fault{Kind: lab.HTTPError}, kind: "http"},
			{f: lab.Fault{Kind: lab.WrongType}, kind: "http"},
			{f: lab.Fault{Kind: lab.Oversize}, kind: "http"},
		}, common...), streams...)},
		{"dns", common},
	}
	for _, tr := range transports {
		for _, fc := range tr.faults {
			f := fc.f
			t.Run(fmt.Sprintf("%s/%s-%v", tr.scheme, f.Kind, f.Prob), func(t *testing.T) {
				t.Parallel()
				bad := lab.Config{Latency: fixed(time.Millisecond), Fault: f, UDP: "-", TCP: "-", TLS: "-"}
				switch tr.scheme {
				case "quic":
					bad.DoQ = "127.0.0.1:0"
				case "https":
					bad.DoH = "127.0.0.1:0"
				case "dns":
					bad.UDP, bad.TCP = "", ""
				}
				ls := newLabs(t, bad, lab.Config{Latency: fixed(5 * time.Millisecond)})
				u := ls.ups[0]
				to := map[string]string{"quic": "quic://" + u.DoQAddr(), "https": "https://" + u.DoHAddr(), "dns": "dns://" + u.UDPAddr()}[tr.scheme]
				rt := startRT(t, fmt.Sprintf("racetls . %s tls://%s {\n tls %s\n tls_servername %s\n race 1\n}",
					to, ls.ups[1].TLSAddr(), ls.caPEM, lab.DefaultServerName))
				for burst := range 4 {
					var wg sync.WaitGroup
					for i := range 10 {
						wg.Go(func() { mustNoError(t, rt, fmt.Sprintf("f%d-%d.example.com.", burst, i)) })
					}
					wg.Wait()
					time.Sleep(200 * time.Millisecond) // idle gaps, for IdleClose
				}
				s := u.Stats()
				if asked := s.QueriesQUIC + s.QueriesHTTPS + s.QueriesUDP + s.QueriesTCP; asked == 0 {
					t.Errorf("the faulty %s upstream was never asked: %+v", tr.scheme, s)
				}
				badUp := rt.upstreams[0]
				always := f.Prob == 0 && f.Kind != lab.IdleClose
				if w := badUp.tally.wins.Load(); always && w != 0 {
					t.Errorf("the %s upstream with %s on every query won %d races", tr.scheme, f.Kind, w)
				}
				if fc.kind != "" {
					if n := testutil.ToFloat64(errorCount.WithLabelValues(rt.server, badUp.name, tr.scheme, fc.kind)); n == 0 {
						t.Errorf("no %q error counted for %s", fc.kind, f.Kind)
					}
				}
				if t.Failed() {
					t.Logf("lab %+v\n%s", s, rt.statsTable())
				}
			})
		}
	}
}
