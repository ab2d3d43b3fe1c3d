package racetls

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/lab"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// TestMetrics: every metric the README names is exported with server and to
// labels, and the figures agree with what happened.
func TestMetrics(t *testing.T) {
	ls := newLabs(t, lab.Config{Latency: fixed(2 * time.Millisecond)}, lab.Config{Latency: fixed(30 * time.Millisecond), Fault: lab.Fault{Kind: lab.ServFail}})
	rt := startRT(t, ls.corefile("race all"))
	for i := range 5 {
		mustNoError(t, rt, fmt.Sprintf("m%d.example.com.", i))
	}
	fast, slow := rt.upstreams[0], rt.upstreams[1]
	waitFor(t, "the slow upstream's late replies", func() bool { return slow.tally.late.Load() == 5 })

	want := map[string]bool{}
	for _, n := range []string{"queries_total", "wins_total", "late_replies_total", "errors_total", "reply_duration_seconds",
		"reconnects_total", "handshakes_total", "inflight", "conns"} {
		want["coredns_racetls_"+n] = false
	}
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if _, ok := want[f.GetName()]; ok && labels["server"] == rt.server && labels["to"] != "" && labels["transport"] == "tls" {
				want[f.GetName()] = true
			}
		}
	}
	for n, seen := range want {
		if !seen {
			t.Errorf("metric %s not exported for this server", n)
		}
	}
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"wins fast", testutil.ToFloat64(winCount.WithLabelValues(rt.server, fast.name, "tls")), 5},
		{"wins slow", testutil.ToFloat64(winCount.WithLabelValues(rt.server, slow.name, "tls")), 0},
		{"queries slow", testutil.ToFloat64(queryCount.WithLabelValues(rt.server, slow.name, "tls")), 5},
		{"late slow", testutil.ToFloat64(lateCount.WithLabelValues(rt.server, slow.name, "tls")), 5},
		{"servfail slow", testutil.ToFloat64(errorCount.WithLabelValues(rt.server, slow.name, "tls", kindServfail)), 5},
		{"conns fast", testutil.ToFloat64(connGauge.WithLabelValues(rt.server, fast.name, "tls")), 2},
		{"handshakes fast", testutil.ToFloat64(handshakeCount.WithLabelValues(rt.server, fast.name, "tls", "false")) +
			testutil.ToFloat64(handshakeCount.WithLabelValues(rt.server, fast.name, "tls", "true")), 2},
	} {
		// The probe that opens each connection answers SERVFAIL too on the slow upstream.
		if c.name == "servfail slow" && c.got >= c.want {
			continue
		}
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	// Every reply is timed, the late ones too; nothing is in flight once all are in.
	for _, u := range []*upstream{fast, slow} {
		if n := sampleCount(t, replyDuration.WithLabelValues(rt.server, u.name, "tls")); n < 5 {
			t.Errorf("reply_duration_seconds of %s: %d replies, want 5 at least", u.name, n)
		}
		waitFor(t, "inflight 0 for "+u.name, func() bool { return testutil.ToFloat64(inflightGauge.WithLabelValues(rt.server, u.name, "tls")) == 0 })
	}

	table := rt.statsTable()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "win%") || !strings.HasPrefix(lines[1], fast.name) || !strings.Contains(lines[1], "100.0") {
		t.Errorf("stats table:\n%s", table)
	}
	t.Logf("\n%s", table)
}

// sampleCount returns the number of observations of the histogram o.
func sampleCount(t *testing.T, o prometheus.Observer) uint64 {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
