package load

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/harness"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startLab(t *testing.T, cfg lab.Config) *lab.Upstream {
	t.Helper()
	harness.CheckFDs(t)
	cfg.Unix = filepath.Join(t.TempDir(), "lab.sock")
	cfg.TLS = "-"
	u, err := lab.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

func TestRunCountsRcodes(t *testing.T) {
	u := startLab(t, lab.Config{})
	for _, tc := range []struct {
		network, addr string
	}{{"udp", u.UDPAddr()}, {"unix", u.UnixPath()}} {
		t.Run(tc.network, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[int]int{}
			res, err := Run(context.Background(), Config{
				Network: tc.network, Addr: tc.addr,
				Conns: 3, InFlight: 16, Count: 600, Duration: 20 * time.Second, EDNS: true,
				Next: func(i int) Query {
					if i%3 == 0 {
						return Query{Name: fmt.Sprintf("nx%d.example", i)}
					}
					return Query{Name: fmt.Sprintf("host%d.%s.example", i, tc.network), Type: dns.TypeAAAA}
				},
				OnReply: func(i int, rtt time.Duration, rcode int) {
					mu.Lock()
					seen[i]++
					mu.Unlock()
					if want := map[bool]int{true: dns.RcodeNameError, false: dns.RcodeSuccess}[i%3 == 0]; rcode != want {
						t.Errorf("query %d: rcode %d, want %d", i, rcode, want)
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != 600 || res.Answered != 600 || res.Timeouts != 0 || res.Errors != 0 || res.Late != 0 {
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
			if got := u.Count(fmt.Sprintf("host%d.%s.example.", 1, tc.network)); got != 1 {
				t.Errorf("upstream saw host1 %d times, want 1", got)
			}
		})
	}
}

func TestRunPipelinesOutOfOrder(t *testing.T) {
	// With 50 ms per reply and 20 queries in flight on one connection, 100 queries take
	// about 250 ms pipelined and 5 s one at a time: the run's 3 s bound separates them.
	u := startLab(t, lab.Config{Latency: lab.Latency{Dist: lab.LogNormal, Median: 50 * time.Millisecond, Sigma: 0.3}})
	res, err := Run(context.Background(), Config{
		Network: "unix", Addr: u.UnixPath(), InFlight: 20, Count: 100, Duration: 3 * time.Second,
		Next: func(i int) Query { return Query{Name: fmt.Sprintf("p%d.example", i)} },
		OnMessage: func(i int, _ time.Duration, msg []byte) {
			m := new(dns.Msg)
			if err := m.Unpack(msg); err != nil {
				t.Errorf("query %d: %v", i, err)
				return
			}
			// Replies arrive out of order; each must still be matched to its own query.
			if want := fmt.Sprintf("p%d.example.", i); m.Question[0].Name != want {
				t.Errorf("query %d matched a reply for %s", i, m.Question[0].Name)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answered != 100 || res.Late != 0 {
		t.Fatalf("result %s", res)
	}
	if p50 := res.Latency.Quantile(0.5); p50 < 40*time.Millisecond {
		t.Errorf("p50 %v below the lab's 50 ms median", p50)
	}
}

func TestRunTimeoutsAndRate(t *testing.T) {
	u := startLab(t, lab.Config{Fault: lab.Fault{Kind: lab.BlackHole, Prob: 0.5}, Seed: 7})
	var mu sync.Mutex
	timedOut := 0
	res, err := Run(context.Background(), Config{
		Network: "udp", Addr: u.UDPAddr(), Conns: 2, InFlight: 100,
		Rate: 1000, Count: 200, Timeout: 200 * time.Millisecond,
		Next: func(i int) Query { return Query{Name: fmt.Sprintf("t%d.example", i)} },
		OnReply: func(_ int, _ time.Duration, rcode int) {
			if rcode == -1 {
				mu.Lock()
				timedOut++
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 200 || res.Answered+res.Timeouts != 200 || res.Timeouts == 0 || res.Answered == 0 {
		t.Fatalf("result %s", res)
	}
	if int64(timedOut) != res.Timeouts {
		t.Errorf("OnReply saw %d timeouts, result %d", timedOut, res.Timeouts)
	}
	// Query 199 is not sent before 199 ms: pacing is a lower bound, not a timing threshold.
	if res.Elapsed < 199*time.Millisecond {
		t.Errorf("elapsed %v: 200 queries at 1000 qps were not paced", res.Elapsed)
	}
}

func TestRunBoundedByDuration(t *testing.T) {
	u := startLab(t, lab.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := Run(ctx, Config{
		Network: "udp", Addr: u.UDPAddr(), InFlight: 4, Duration: 100 * time.Millisecond,
		Next: func(i int) Query { return Query{Name: "d.example"} },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.Answered != res.Sent {
		t.Fatalf("result %s", res)
	}
}

func TestRunInvalid(t *testing.T) {
	next := func(int) Query { return Query{Name: "x."} }
	for _, cfg := range []Config{
		{Network: "tcp", Addr: "127.0.0.1:1", Count: 1, Next: next},
		{Network: "udp", Addr: "127.0.0.1:1", Next: next},
		{Network: "udp", Addr: "127.0.0.1:1", Count: 1},
		{Network: "udp", Addr: "127.0.0.1:1", Count: 1, InFlight: 70000, Next: next},
		{Network: "unix", Addr: filepath.Join(t.TempDir(), "none.sock"), Count: 1, Next: next},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run(%+v) succeeded", cfg)
		}
	}
}

func TestRunSchedule(t *testing.T) {
	u := startLab(t, lab.Config{})
	res, err := Run(context.Background(), Config{
		Network: "udp", Addr: u.UDPAddr(), InFlight: 8, Count: 5, Duration: 5 * time.Second,
		// Query 4 is not sent before 160 ms: a lower bound, not a timing threshold.
		Schedule: func(i int) time.Duration { return time.Duration(i*i) * 10 * time.Millisecond },
		Next:     func(i int) Query { return Query{Name: fmt.Sprintf("s%d.example", i)} },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answered != 5 || res.Elapsed < 160*time.Millisecond {
		t.Fatalf("result %s", res)
	}
}
