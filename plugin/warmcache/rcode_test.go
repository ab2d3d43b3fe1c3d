package warmcache

import (
	"bytes"
	"context"
	golog "log"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	_ "github.com/coredns/coredns/plugin/log"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// responses sums coredns_dns_responses_total for one rcode.
func responses(t *testing.T, rcode string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "coredns_dns_responses_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "rcode" && l.GetValue() == rcode {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// newLogger builds the log plugin through its own setup, in front of next.
func newLogger(t *testing.T, next plugin.Handler) plugin.Handler {
	t.Helper()
	c := caddy.NewTestController("dns", "log")
	setupLog, err := caddy.DirectiveAction("dns", "log")
	if err != nil {
		t.Fatal(err)
	}
	if err := setupLog(c); err != nil {
		t.Fatal(err)
	}
	return dnsserver.GetConfig(c).Plugin[0](next)
}

func TestRcodeOnHitSeenByLogAndPrometheus(t *testing.T) {
	u := startLab(t, lab.Config{})
	c, _ := newCache(t, "warmcache", u)
	m := metrics.New("")
	m.AddZone(".")
	m.Next = newLogger(t, c)

	var out bytes.Buffer
	golog.SetOutput(&out)
	t.Cleanup(func() { golog.SetOutput(&bytes.Buffer{}) })

	before := responses(t, "NXDOMAIN")
	for i := range 3 { // a miss, then two raw hits
		w := &recorder{}
		r := new(dns.Msg)
		r.SetQuestion("nx-rcode.example.org.", dns.TypeA)
		if _, err := m.ServeDNS(context.Background(), w, r); err != nil {
			t.Fatal(err)
		}
		if got := w.reply(t).Rcode; got != dns.RcodeNameError {
			t.Fatalf("query %d: rcode %d", i, got)
		}
	}
	if got := responses(t, "NXDOMAIN") - before; got != 3 {
		t.Errorf("prometheus counted %v NXDOMAIN responses, want 3", got)
	}
	if n := strings.Count(out.String(), " NXDOMAIN "); n != 3 {
		t.Errorf("log printed NXDOMAIN %d times, want 3:\n%s", n, out.String())
	}
	if u.Count("nx-rcode.example.org.") != 1 {
		t.Errorf("the last two queries were not hits")
	}
}
