package racetls

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/lab"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestFaults: with one healthy upstream, no fault of the other reaches the
// client. The faulty upstream is the faster one and is ranked first for each
// burst, and only one upstream is asked at first (race 1), so that the burst's
// queries need escalation to the healthy one.
func TestFaults(t *testing.T) {
	faults := []lab.Fault{
		{Kind: lab.IdleClose, After: 150 * time.Millisecond},
		{Kind: lab.Reset},
		{Kind: lab.Reset, Prob: 0.3},
		{Kind: lab.BlackHole},
		{Kind: lab.Garbage},
		{Kind: lab.WrongID},
		{Kind: lab.WrongQuestion},
		{Kind: lab.ServFail},
		{Kind: lab.Refused},
	}
	for _, f := range faults {
		t.Run(fmt.Sprintf("%s-%v", f.Kind, f.Prob), func(t *testing.T) {
			t.Parallel()
			ls := newLabs(t, lab.Config{Latency: fixed(time.Millisecond), Fault: f}, lab.Config{Latency: fixed(5 * time.Millisecond)})
			rt := startRT(t, ls.corefile("race 1"))
			// Bursts of concurrent queries with idle gaps (for IdleClose).
			for burst := range 4 {
				rankFirst(rt.upstreams[0], rt.upstreams[1])
				var wg sync.WaitGroup
				for i := range 10 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						mustNoError(t, rt, fmt.Sprintf("f%d-%d.example.com.", burst, i))
					}()
				}
				wg.Wait()
				time.Sleep(200 * time.Millisecond)
			}
			if q := rt.upstreams[0].tally.queries.Load(); q < 4 {
				t.Errorf("the faulty upstream was asked %d queries, want one per burst at least", q)
			}
			if t.Failed() {
				t.Logf("lab %+v\n%s", ls.ups[0].Stats(), rt.statsTable())
			}
		})
	}
}

// rankFirst makes first the fastest upstream by its EWMA, and next the second.
func rankFirst(first, next *upstream) {
	first.ewma.Store(math.Float64bits(float64(time.Millisecond)))
	next.ewma.Store(math.Float64bits(float64(50 * time.Millisecond)))
}

// TestDownAtStart: an upstream down at startup does not fail startup or
// queries, and is used again once it is back.
func TestDownAtStart(t *testing.T) {
	ls := newLabs(t, lab.Config{}, lab.Config{Latency: fixed(5 * time.Millisecond)})
	ls.ups[0].Down()
	rt := startRT(t, ls.corefile("race all"))
	for i := range 5 {
		mustNoError(t, rt, fmt.Sprintf("d%d.example.com.", i))
	}
	if err := ls.ups[0].Up(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a connection to the revived upstream", func() bool { return openConns(rt.upstreams[0]) > 0 })
	for i := range 5 {
		mustNoError(t, rt, fmt.Sprintf("u%d.example.com.", i))
	}
	if ls.ups[0].Count("u0.example.com.") != 1 || rt.upstreams[0].tally.wins.Load() == 0 {
		t.Errorf("revived upstream: %d queries for u0, %d wins", ls.ups[0].Count("u0.example.com."), rt.upstreams[0].tally.wins.Load())
	}
}

// TestReconnectResumes: after the server drops the connections, the
// reconnects resume the TLS session, as metrics and the lab both show.
func TestReconnectResumes(t *testing.T) {
	ls := newLabs(t, lab.Config{Fault: lab.Fault{Kind: lab.IdleClose, After: 100 * time.Millisecond}})
	rt := startRT(t, ls.corefile("conns 1"))
	u := rt.upstreams[0]
	mustNoError(t, rt, "r0.example.com.")
	waitFor(t, "a resumed reconnect", func() bool { return u.tally.reconnects.Load() > 0 && u.tally.resumed.Load() > 0 })
	mustNoError(t, rt, "r1.example.com.")
	if st := ls.ups[0].Stats(); st.Resumed == 0 {
		t.Errorf("lab saw %d handshakes, none resumed", st.Handshakes)
	}
	if full := u.tally.full.Load(); full != 1 {
		t.Errorf("%d full handshakes, want only the first", full)
	}
}

// TestKeepalive: an idle connection is kept open by probes below the
// server's announced edns-tcp-keepalive idle timeout.
func TestKeepalive(t *testing.T) {
	ls := newLabs(t, lab.Config{IdleTimeout: 400 * time.Millisecond})
	rt := startRT(t, ls.corefile("conns 1\n keepalive 5s"))
	u := rt.upstreams[0]
	waitFor(t, "a connection", func() bool { return openConns(u) == 1 })
	time.Sleep(time.Second)
	if st := ls.ups[0].Stats(); st.Conns != 1 || u.tally.reconnects.Load() != 0 {
		t.Errorf("idle connection was not kept alive: lab accepted %d, %d reconnects", st.Conns, u.tally.reconnects.Load())
	}
	mustNoError(t, rt, "ka.example.com.")
}

// TestResendAfterReset: a query in flight on a connection that breaks is
// re-sent on the new connection and answered, with a single upstream.
func TestResendAfterReset(t *testing.T) {
	ls := newLabs(t, lab.Config{Latency: fixed(300 * time.Millisecond)})
	rt := startRT(t, ls.corefile("conns 1"))
	waitFor(t, "a connection", func() bool { return openConns(rt.upstreams[0]) == 1 })
	done := make(chan error, 1)
	go func() { _, err := query(rt, "resend.example.com."); done <- err }()
	waitFor(t, "the query at the upstream", func() bool { return ls.ups[0].Count("resend.example.com.") == 1 })
	ls.ups[0].Down() // closes the connection with the query in flight
	if err := ls.ups[0].Up(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("query lost with its connection: %v", err)
	}
	if n := ls.ups[0].Count("resend.example.com."); n != 2 {
		t.Errorf("upstream saw the query %d times, want 2 (sent, re-sent)", n)
	}
	if rt.upstreams[0].tally.reconnects.Load() == 0 {
		t.Error("no reconnect counted")
	}
}

// TestHalfOpen: a connection with a query outstanding and nothing read for a
// whole timeout is closed and replaced.
func TestHalfOpen(t *testing.T) {
	ls := newLabs(t, lab.Config{Fault: lab.Fault{Kind: lab.BlackHole}}, lab.Config{})
	rt := startRT(t, ls.corefile("race all\n conns 1\n timeout 200ms"))
	// The query puts a call on the silent connection; its answer (from the other
	// upstream, within a 200 ms deadline) is not what this test is about.
	query(rt, "ho.example.com.")
	u := rt.upstreams[0]
	waitFor(t, "a half-open connection replaced", func() bool {
		return testutil.ToFloat64(errorCount.WithLabelValues(rt.server, u.name, "tls", kindHalfOpen)) > 0 && u.tally.reconnects.Load() > 0
	})
}
