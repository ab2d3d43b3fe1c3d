// Package load implements a bounded DNS load generator for benchmarks and soak tests.
//
// It sends queries over UDP or over a Unix stream socket with 2-byte length framing
// (RFC 1035 §4.2.2), pipelined: each connection keeps up to InFlight queries outstanding and
// matches replies by message ID, so replies may arrive in any order (RFC 7766 §6.2.1.1). A run
// is bounded by a query count, a duration, or both, optionally paced at a fixed rate (open
// loop), and records latency percentiles, rcodes and timeouts.
//
//	res, err := load.Run(ctx, load.Config{
//		Network: "udp", Addr: "127.0.0.1:1053",
//		Conns: 4, InFlight: 64, Duration: 10 * time.Second,
//		Next: func(i int) load.Query { return load.Query{Name: names[i%len(names)]} },
//	})
//	fmt.Println(res.QPS(), res.Latency.Quantile(0.99), res.Rcodes[dns.RcodeSuccess])
package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes a run.
type Config struct {
	Network string // "udp" or "unix"
	Addr    string // "127.0.0.1:port" for udp, a socket path for unix

	Conns    int // UDP sockets or stream connections; 1 when 0
	InFlight int // outstanding queries per connection; 1 when 0, at most 65535

	// Rate paces the whole run at this many queries per second (query i is sent no earlier
	// than i/Rate after the start); 0 sends as fast as the in-flight window allows.
	Rate float64
	// Schedule, when set, replaces Rate: query i is sent no earlier than Schedule(i) after
	// the start (a replayed trace). It must not decrease with i.
	Schedule func(i int) time.Duration
	// Count stops after this many queries; Duration stops sending after this long. At
	// least one must be set. Replies outstanding at the stop are awaited up to Timeout.
	Count    int
	Duration time.Duration
	// Timeout is how long a query waits for its reply before it counts as a timeout; 2s
	// when 0.
	Timeout time.Duration

	// EDNS adds an OPT record (UDP size 1232) to every query.
	EDNS bool

	// Next returns the i-th query (i counts from 0 across all connections). It is called
	// once per query, concurrently from several goroutines. Required.
	Next func(i int) Query
	// OnReply, when set, is called once per query with its index, round-trip time and
	// rcode, or rcode -1 on timeout. It is called concurrently from several goroutines.
	OnReply func(i int, rtt time.Duration, rcode int)
	// OnMessage, when set, is called with every matched reply's wire bytes, which are valid
	// only during the call (after OnReply, from the same goroutine).
	OnMessage func(i int, rtt time.Duration, msg []byte)
}

// Result is what a run observed.
type Result struct {
	Sent      int64 // queries written
	Answered  int64 // replies matched to an outstanding query
	Timeouts  int64 // queries without a reply within Timeout
	Late      int64 // replies for no outstanding query (after their timeout, or unknown IDs)
	Truncated int64 // replies with TC set
	Errors    int64 // write errors, read errors, malformed replies

	Rcodes  map[int]int64 // answered queries by rcode
	Elapsed time.Duration // from the first send to the last reply (or timeout)
	Latency Histogram     // round-trip times of answered queries
	Errs    []error       // the first few errors, for diagnosis
}

// QPS returns answered queries per second of Elapsed.
func (r *Result) QPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Answered) / r.Elapsed.Seconds()
}

// String summarises the result on one line.
func (r *Result) String() string {
	return fmt.Sprintf("sent %d answered %d timeouts %d late %d errors %d in %v: %.0f qps, p50 %v p99 %v",
		r.Sent, r.Answered, r.Timeouts, r.Late, r.Errors, r.Elapsed.Round(time.Millisecond), r.QPS(),
		r.Latency.Quantile(0.5), r.Latency.Quantile(0.99))
}

// runner is the state shared by a run's connections.
type runner struct {
	cfg   Config
	start time.Time
	next  atomic.Int64
	stop  atomic.Bool
}

// Run performs one bounded run. It returns an error when the configuration is invalid or no
// connection could be opened; failures during the run are counted in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Network != "udp" && cfg.Network != "unix" {
		return nil, fmt.Errorf("load: network %q: want udp or unix", cfg.Network)
	}
	if cfg.Next == nil {
		return nil, errors.New("load: Next is required")
	}
	if cfg.Count <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("load: unbounded run: set Count or Duration")
	}
	if cfg.Rate < 0 || cfg.Count < 0 || cfg.Duration < 0 || cfg.Timeout < 0 {
		return nil, errors.New("load: negative Rate, Count, Duration or Timeout")
	}
	cfg.Conns = max(cfg.Conns, 1)
	cfg.InFlight = max(cfg.InFlight, 1)
	if cfg.InFlight > 65535 {
		return nil, fmt.Errorf("load: InFlight %d above 65535", cfg.InFlight)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	r := &runner{cfg: cfg}
	conns := make([]*conn, 0, cfg.Conns)
	for range cfg.Conns {
		c, err := dial(r)
		if err != nil {
			for _, c := range conns {
				c.nc.Close()
			}
			return nil, fmt.Errorf("load: %w", err)
		}
		conns = append(conns, c)
	}
	r.start = time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.run(ctx) })
	}
	wg.Wait()

	res := &Result{Rcodes: map[int]int64{}}
	var last time.Duration
	for _, c := range conns {
		res.Sent += c.sent
		res.Answered += c.answered
		res.Timeouts += c.timeouts.Load()
		res.Late += c.late
		res.Truncated += c.truncated
		res.Errors += c.errors.Load()
		res.Errs = append(res.Errs, c.errs...)
		for rc, n := range c.rcodes {
			if n > 0 {
				res.Rcodes[rc] += n
			}
		}
		res.Latency.Merge(&c.hist)
		last = max(last, c.last)
	}
	res.Elapsed = last
	return res, nil
}

// take returns the next query index, or false when the run is over.
func (r *runner) take(ctx context.Context) (int, bool) {
	if r.stop.Load() || ctx.Err() != nil {
		return 0, false
	}
	cfg := &r.cfg
	k := int(r.next.Add(1) - 1)
	if cfg.Count > 0 && k >= cfg.Count {
		r.stop.Store(true)
		return 0, false
	}
	now := time.Since(r.start)
	if cfg.Duration > 0 && now >= cfg.Duration {
		r.stop.Store(true)
		return 0, false
	}
	if cfg.Rate > 0 || cfg.Schedule != nil {
		var at time.Duration
		if cfg.Schedule != nil {
			at = cfg.Schedule(k)
		} else {
			at = time.Duration(float64(k) / cfg.Rate * float64(time.Second))
		}
		if cfg.Duration > 0 && at >= cfg.Duration {
			r.stop.Store(true)
			return 0, false
		}
		if wait := at - now; wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return 0, false
			}
		}
	}
	return k, true
}
