package kit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startLab(t *testing.T, cfg lab.Config) *lab.Upstream {
	t.Helper()
	kit.CheckFDs(t)
	cfg.Unix = filepath.Join(t.TempDir(), "lab.sock")
	u, err := lab.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// transports returns a load aimed at each of u's transports.
func transports(t *testing.T, u *lab.Upstream, ca *lab.CA) []kit.Load {
	return []kit.Load{
		{Network: "udp", Addr: u.UDPAddr()},
		{Network: "tcp", Addr: u.TCPAddr()},
		{Network: "tls", Addr: u.TLSAddr(), TLS: ca.ClientTLS(lab.DefaultServerName)},
		{Network: "unix", Addr: u.UnixPath()},
	}
}

func newCA(t *testing.T) *lab.CA {
	t.Helper()
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestRunCountsRcodes(t *testing.T) {
	ca := newCA(t)
	u := startLab(t, lab.Config{CA: ca})
	for _, l := range transports(t, u, ca) {
		t.Run(l.Network, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[int]int{}
			l.Conns, l.InFlight, l.Count, l.Duration, l.EDNS, l.Keep = 3, 16, 600, 20*time.Second, true, true
			l.Next = func(i int) kit.Query {
				if i%3 == 0 {
					return kit.Query{Name: fmt.Sprintf("nx%d.example", i)}
				}
				return kit.Query{Name: fmt.Sprintf("host%d.%s.example", i, l.Network), Type: dns.TypeAAAA}
			}
			l.OnReply = func(i int, rtt time.Duration, rcode int) {
				mu.Lock()
				seen[i]++
				mu.Unlock()
				if want := map[bool]int{true: dns.RcodeNameError, false: dns.RcodeSuccess}[i%3 == 0]; rcode != want {
					t.Errorf("query %d: rcode %d, want %d", i, rcode, want)
				}
			}
			res, err := l.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != 600 || res.Answered != 600 || res.Timeouts != 0 || res.Failed != 0 || res.Errors != 0 || res.Late != 0 {
				t.Fatalf("result %s, errors %v", res, res.Errs)
			}
			if res.Rcodes[dns.RcodeNameError] != 200 || res.Rcodes[dns.RcodeSuccess] != 400 {
				t.Errorf("rcodes %v", res.Rcodes)
			}
			if len(seen) != 600 {
				t.Errorf("OnReply saw %d distinct queries, want 600", len(seen))
			}
			for i, n := range seen {
				if n != 1 {
					t.Errorf("query %d reported %d times", i, n)
				}
			}
			if res.Latency.Count() != 600 || res.QPS() <= 0 {
				t.Errorf("latency count %d, qps %v", res.Latency.Count(), res.QPS())
			}
			if len(res.Queries) != 600 {
				t.Fatalf("kept %d queries, want 600", len(res.Queries))
			}
			for i, q := range res.Queries {
				if i > 0 && q.At < res.Queries[i-1].At {
					t.Fatalf("queries not ordered by send time at %d", i)
				}
				if q.Fail != "" || q.Latency <= 0 || q.Rcode != map[bool]int{true: dns.RcodeNameError, false: dns.RcodeSuccess}[q.I%3 == 0] {
					t.Fatalf("query %+v", q)
				}
			}
			if st := res.Stats(); st.Sent != 600 || st.Failed != 0 || st.P50 <= 0 {
				t.Errorf("stats %v", st)
			}
			if got := u.Count(fmt.Sprintf("host%d.%s.example.", 1, l.Network)); got != 1 {
				t.Errorf("upstream saw host1 %d times, want 1", got)
			}
		})
	}
	st := u.Stats()
	if st.QueriesUDP != 600 || st.QueriesTCP != 600 || st.QueriesTLS != 600 || st.QueriesUnix != 600 {
		t.Errorf("lab saw %+v, want 600 queries on each transport", st)
	}
}

func TestRunPipelinesOutOfOrder(t *testing.T) {
	// With 50 ms per reply and 20 queries in flight on one connection, 100 queries take
	// about 250 ms pipelined and 5 s one at a time: the run's 3 s bound separates them.
	ca := newCA(t)
	u := startLab(t, lab.Config{CA: ca, Latency: lab.Latency{Dist: lab.LogNormal, Median: 50 * time.Millisecond, Sigma: 0.3}})
	for _, l := range transports(t, u, ca)[1:] {
		t.Run(l.Network, func(t *testing.T) {
			l.InFlight, l.Count, l.Duration = 20, 100, 3*time.Second
			l.Next = func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("p%d.example", i)} }
			l.OnMessage = func(i int, _ time.Duration, msg []byte) {
				m := new(dns.Msg)
				if err := m.Unpack(msg); err != nil {
					t.Errorf("query %d: %v", i, err)
					return
				}
				// Replies arrive out of order; each must still be matched to its own query.
				if want := fmt.Sprintf("p%d.example.", i); m.Question[0].Name != want {
					t.Errorf("query %d matched a reply for %s", i, m.Question[0].Name)
				}
			}
			res, err := l.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Answered != 100 || res.Late != 0 {
				t.Fatalf("result %s", res)
			}
			if p50 := res.Latency.Quantile(0.5); p50 < 40*time.Millisecond {
				t.Errorf("p50 %v below the lab's 50 ms median", p50)
			}
		})
	}
}

func TestRunTimeoutsAndRate(t *testing.T) {
	u := startLab(t, lab.Config{Fault: lab.Fault{Kind: lab.BlackHole, Prob: 0.5}, Seed: 7})
	var mu sync.Mutex
	timedOut := 0
	res, err := kit.Load{
		Network: "udp", Addr: u.UDPAddr(), Conns: 2, InFlight: 100, Keep: true,
		Rate: 1000, Count: 200, Timeout: 200 * time.Millisecond,
		Next: func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("t%d.example", i)} },
		OnReply: func(_ int, _ time.Duration, rcode int) {
			if rcode == -1 {
				mu.Lock()
				timedOut++
				mu.Unlock()
			}
		},
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 200 || res.Answered+res.Timeouts != 200 || res.Timeouts == 0 || res.Answered == 0 {
		t.Fatalf("result %s", res)
	}
	if int64(timedOut) != res.Timeouts {
		t.Errorf("OnReply saw %d timeouts, result %d", timedOut, res.Timeouts)
	}
	if st := res.Stats(); int64(st.Fails["timeout"]) != res.Timeouts || st.Failed != st.Fails["timeout"] {
		t.Errorf("stats %v, %d timeouts", st, res.Timeouts)
	}
	// Query 199 is not sent before 199 ms: pacing is a lower bound, not a timing threshold.
	if res.Elapsed < 199*time.Millisecond {
		t.Errorf("elapsed %v: 200 queries at 1000 qps were not paced", res.Elapsed)
	}
}

func TestRunRetriesUDP(t *testing.T) {
	// Every other query is dropped; with three attempts a query is lost only when all three
	// are, so nearly all are answered, some after a re-send.
	u := startLab(t, lab.Config{Fault: lab.Fault{Kind: lab.BlackHole, Prob: 0.5}, Seed: 3})
	res, err := kit.Load{
		Network: "udp", Addr: u.UDPAddr(), InFlight: 50, Count: 100, Timeout: 100 * time.Millisecond, Retries: 2,
		Next: func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("r%d.example", i)} },
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	queries := u.Stats().Queries
	if res.Sent != 100 || res.Answered+res.Timeouts != 100 || queries <= 100 || res.Answered <= 100-res.Timeouts-1 {
		t.Fatalf("result %s; the lab saw %d queries", res, queries)
	}
	if res.Answered < 75 {
		t.Errorf("only %d of 100 answered with 2 retries against 50%% loss", res.Answered)
	}
	if res.Latency.Max() < 100*time.Millisecond {
		t.Errorf("no answered query waited for a re-send: max latency %v", res.Latency.Max())
	}
}

func TestRunRedials(t *testing.T) {
	// The server is not there at the start; queries fail (nosocket) until it is, then the
	// load dials again and gets answers.
	sock := filepath.Join(t.TempDir(), "late.sock")
	var u *lab.Upstream
	started := make(chan struct{})
	go func() {
		defer close(started)
		time.Sleep(100 * time.Millisecond)
		var err error
		if u, err = lab.Start(lab.Config{Unix: sock, UDP: "-", TCP: "-", TLS: "-"}); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() {
		<-started
		if u != nil {
			u.Close()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var answered sync.Once
	res, err := kit.Load{
		Network: "unix", Addr: sock, Redial: true, Keep: true, Duration: 20 * time.Second,
		Next: func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("d%d.example", i)} },
		OnReply: func(i int, _ time.Duration, rcode int) {
			if rcode == dns.RcodeSuccess {
				answered.Do(func() { time.AfterFunc(50*time.Millisecond, cancel) })
			}
		},
	}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := res.Stats()
	// Between the socket file's bind and listen a dial is refused.
	if st.Fails["nosocket"] == 0 || res.Answered == 0 || st.Failed != st.Fails["nosocket"]+st.Fails["refused"] {
		t.Fatalf("result %s, stats %v", res, st)
	}
	first, last, ok := res.FailedBetween()
	okAt, okFound := res.FirstOK(res.Start)
	if !ok || !okFound || last < first || okAt.Before(res.Start.Add(last)) {
		t.Errorf("failed %v..%v (%v), first success at %v", first, last, ok, okAt.Sub(res.Start))
	}
	if _, err := os.Stat(sock); err != nil {
		t.Error(err)
	}
}

func TestRunBreaksFailOutstanding(t *testing.T) {
	// A lab that resets every TCP connection at its first query: each query fails with a
	// reset or eof, and the load dials again for the next one.
	u := startLab(t, lab.Config{Fault: lab.Fault{Kind: lab.Reset}})
	res, err := kit.Load{
		Network: "tcp", Addr: u.TCPAddr(), InFlight: 4, Count: 40, Keep: true, Duration: 20 * time.Second,
		Next: func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("x%d.example", i)} },
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st := res.Stats()
	if res.Sent != 40 || res.Failed != 40 || st.Failed != 40 || st.Fails["reset"]+st.Fails["eof"] != 40 {
		t.Fatalf("result %s, stats %v", res, st)
	}
	if conns := u.Stats().Conns; conns < 2 {
		t.Errorf("the lab accepted %d connections; the load did not dial again", conns)
	}
}

func TestRunBoundedByDuration(t *testing.T) {
	u := startLab(t, lab.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := kit.Load{
		Network: "udp", Addr: u.UDPAddr(), InFlight: 4, Duration: 100 * time.Millisecond,
		Next: func(i int) kit.Query { return kit.Query{Name: "d.example"} },
	}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.Answered != res.Sent {
		t.Fatalf("result %s", res)
	}
}

func TestRunInvalid(t *testing.T) {
	next := func(int) kit.Query { return kit.Query{Name: "x."} }
	for _, l := range []kit.Load{
		{Network: "sctp", Addr: "127.0.0.1:1", Count: 1, Next: next},
		{Network: "udp", Addr: "127.0.0.1:1", Next: next},
		{Network: "udp", Addr: "127.0.0.1:1", Count: 1},
		{Network: "udp", Addr: "127.0.0.1:1", Count: 1, InFlight: 70000, Next: next},
		{Network: "udp", Addr: "127.0.0.1:1", Count: 1, Retries: -1, Next: next},
		{Network: "udp", Addr: "127.0.0.1:1", Count: 1, ConnQueries: -1, Next: next},
		{Network: "unix", Addr: filepath.Join(t.TempDir(), "none.sock"), Count: 1, Next: next},
	} {
		if _, err := l.Run(context.Background()); err == nil {
			t.Errorf("Run(%+v) succeeded", l)
		}
	}
}

func TestRunSchedule(t *testing.T) {
	u := startLab(t, lab.Config{})
	res, err := kit.Load{
		Network: "udp", Addr: u.UDPAddr(), InFlight: 8, Count: 5, Duration: 5 * time.Second,
		// Query 4 is not sent before 160 ms: a lower bound, not a timing threshold.
		Schedule: func(i int) time.Duration { return time.Duration(i*i) * 10 * time.Millisecond },
		Next:     func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("s%d.example", i)} },
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Answered != 5 || res.Elapsed < 160*time.Millisecond {
		t.Fatalf("result %s", res)
	}
}

func TestRunMatchesQuestion(t *testing.T) {
	// Replies with the right ID for another question are not answers: each query times out.
	u := startLab(t, lab.Config{Fault: lab.Fault{Kind: lab.WrongQuestion}})
	res, err := kit.Load{
		Network: "udp", Addr: u.UDPAddr(), InFlight: 5, Count: 5, Timeout: 200 * time.Millisecond,
		Next: func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("w%d.example", i)} },
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Answered != 0 || res.Timeouts != 5 || res.Errors < 5 {
		t.Fatalf("result %s", res)
	}
}

func TestRunConnQueries(t *testing.T) {
	// ConnQueries 1: a connection per query (and at most one more per worker, dialled while
	// the other worker took the last query); 5: four connections for 20 queries, or five
	// when the two workers split the queries unevenly.
	for _, tc := range []struct{ per, conns, most int }{{1, 20, 22}, {5, 4, 5}} {
		u := startLab(t, lab.Config{})
		res, err := kit.Load{
			Network: "unix", Addr: u.UnixPath(), Conns: 2, InFlight: 3, Count: 20, ConnQueries: tc.per, Duration: 20 * time.Second,
			Next: func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("c%d.example", i)} },
		}.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Answered != 20 || res.Failed != 0 || res.Timeouts != 0 {
			t.Fatalf("ConnQueries %d: result %s, errors %v", tc.per, res, res.Errs)
		}
		if st := u.Stats(); st.Conns < int64(tc.conns) || st.Conns > int64(tc.most) {
			t.Errorf("ConnQueries %d: the lab accepted %d connections, want %d to %d", tc.per, st.Conns, tc.conns, tc.most)
		}
	}
}
