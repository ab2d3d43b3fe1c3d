package racetls

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines. forward (run next to racetls by the composition
// tests) stops its proxies' connection managers only from a finalizer, which nothing
// guarantees to run: those are forward's, not racetls's.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/coredns/coredns/plugin/pkg/proxy.(*Transport).connManager"))
}

// labSet is a CA and lab upstreams that share it.
type labSet struct {
	ca    *lab.CA
	caPEM string // path of the CA file
	ups   []*lab.Upstream
}

func newLabs(t testing.TB, cfgs ...lab.Config) *labSet {
	t.Helper()
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	ls := &labSet{ca: ca, caPEM: dir + "/" + lab.CAFile}
	for _, cfg := range cfgs {
		cfg.CA = ca
		u, err := lab.Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		ls.ups = append(ls.ups, u)
	}
	return ls
}

// corefile returns a racetls stanza to the labs with the options in body.
func (ls *labSet) corefile(body string) string {
	var to []string
	for _, u := range ls.ups {
		to = append(to, "tls://"+u.TLSAddr())
	}
	return fmt.Sprintf("racetls . %s {\n tls %s\n tls_servername %s\n %s\n}", strings.Join(to, " "), ls.caPEM, lab.DefaultServerName, body)
}

var serverSeq atomic.Int64

// startRT parses corefile and starts the plugin with a server label of its
// own, so that metrics do not mix between tests.
func startRT(t testing.TB, corefile string) *RaceTLS {
	t.Helper()
	rt, err := parse(caddy.NewTestController("dns", corefile))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, corefile)
	}
	rt.Next = test.ErrorHandler()
	rt.server = fmt.Sprintf("test%d://%s", serverSeq.Add(1), t.Name())
	// The tests read the stats table's tally, which is off unless stats is set.
	for _, u := range rt.upstreams {
		u.tally = new(tally)
	}
	if err := rt.OnStartup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.OnShutdown() })
	// Let the first dials finish, so that tests count what they mean to.
	for _, u := range rt.upstreams {
		waitFor(t, "the first dial to "+u.name, func() bool {
			u.mu.Lock()
			defer u.mu.Unlock()
			hs := u.tally.full.Load() + u.tally.resumed.Load()
			return u.dials.Load() >= int64(rt.opts.conns) && (hs >= uint64(rt.opts.conns) || u.tr.scheme() == "dns") || u.dialErr != nil
		})
	}
	return rt
}

// query sends one A query through rt and returns the reply written to the
// client, nil with an error when the plugin wrote nothing.
func query(rt *RaceTLS, name string) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	rc, err := rt.ServeDNS(context.Background(), rec, m)
	if rec.Msg == nil {
		return nil, fmt.Errorf("rcode %s: %v", dns.RcodeToString[rc], err)
	}
	return rec.Msg, nil
}

// mustNoError fails the test unless name resolves with NOERROR and an answer for name. It
// may be called from any goroutine: it reports with Errorf.
func mustNoError(t testing.TB, rt *RaceTLS, name string) bool {
	t.Helper()
	r, err := query(rt, name)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return false
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 || !strings.EqualFold(r.Answer[0].Header().Name, name) {
		t.Errorf("%s: rcode %s, answer %v", name, dns.RcodeToString[r.Rcode], r.Answer)
		return false
	}
	return true
}

// waitFor polls cond every 10 ms for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// openConns returns the upstream's open connections.
func openConns(u *upstream) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.conns)
}

func fixed(d time.Duration) lab.Latency { return lab.Latency{Dist: lab.Fixed, Median: d} }
