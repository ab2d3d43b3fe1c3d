package kit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Load is a bounded DNS load, for benchmarks, soak and reliability tests.
//
// It sends queries over UDP, TCP, DNS-over-TLS or the unixsock Unix socket (streams with
// 2-byte length framing, RFC 1035 §4.2.2), pipelined: each connection keeps up to InFlight
// queries outstanding and matches replies by message ID and question, so replies may arrive
// in any order (RFC 7766 §6.2.1.1). InFlight 1 is a closed loop: each connection is a
// client that waits for its reply before it asks again. A run is bounded by a query count,
// a duration, or both, optionally paced at a fixed rate (open loop) or by a schedule, and
// records every query's latency (Result.Latency; with Keep, each query's fate).
//
//	res, err := kit.Load{
//		Network: "udp", Addr: "127.0.0.1:1053",
//		Conns: 4, InFlight: 64, Duration: 10 * time.Second,
//		Next: func(i int) kit.Query { return kit.Query{Name: names[i%len(names)]} },
//	}.Run(ctx)
//	fmt.Println(res.QPS(), res.Latency.Quantile(0.99), res.Rcodes[dns.RcodeSuccess])
type Load struct {
	Network string      // "udp", "tcp", "tls" (DNS-over-TLS) or "unix"
	Addr    string      // "127.0.0.1:port", or a socket path for unix
	TLS     *tls.Config // for tls: the server's name and CA

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
	// Timeout is how long a query (each attempt of it) waits for its reply before it counts
	// as a timeout; 2s when 0.
	Timeout time.Duration
	// Retries re-sends a UDP query that timed out up to this many times, as a stub resolver
	// does (glibc's attempts:2); its latency then includes the wait.
	Retries int
	// Redial lets a run start while its server is not there yet: a connection that cannot
	// be opened is dialled again for the next query, the query failing. Without it Run
	// returns an error when a connection cannot be opened at the start. A stream that breaks
	// during the run is always dialled again, its outstanding queries failing.
	Redial bool
	// ConnQueries closes each connection once it has carried this many queries (and their
	// replies came) and dials a new one, as clients that open a connection per lookup do;
	// 0 keeps a connection for the whole run.
	ConnQueries int

	// EDNS adds an OPT record (UDP size 1232) to every query.
	EDNS bool
	// Keep records every query in Result.Queries, for Window, Between and FirstOK.
	Keep bool

	// Next returns the i-th query (i counts from 0 across all connections). It is called
	// once per query, concurrently from several goroutines. Required.
	Next func(i int) Query
	// OnReply, when set, is called once per query with its index, round-trip time and
	// rcode, or rcode -1 when it got no reply (timeout or broken connection). It is called
	// concurrently from several goroutines.
	OnReply func(i int, rtt time.Duration, rcode int)
	// OnMessage, when set, is called with every matched reply's wire bytes, which are valid
	// only during the call (after OnReply, from the same goroutine).
	OnMessage func(i int, rtt time.Duration, msg []byte)
}

// Record is the fate of one query.
type Record struct {
	I       int           // query index
	At      time.Duration // when it was first sent, since the start
	Latency time.Duration // until its reply, or until it failed
	Rcode   int           // the reply's rcode, -1 without a reply
	// Fail is "" for NOERROR and NXDOMAIN; else the rcode's name (SERVFAIL...) or why there
	// was no reply: timeout, eof, reset, refused, nosocket, conn.
	Fail string
}

// Result is what a run observed.
type Result struct {
	Sent      int64 // queries asked (including those whose connection could not be opened)
	Answered  int64 // replies matched to an outstanding query
	Timeouts  int64 // queries without a reply within Timeout
	Failed    int64 // queries without a reply because their connection failed
	Late      int64 // replies for no outstanding query (after their timeout, or unknown IDs)
	Truncated int64 // replies with TC set
	Errors    int64 // write errors, read errors, malformed or mismatched replies

	Rcodes  map[int]int64 // answered queries by rcode
	Start   time.Time     // when the first query could be sent
	Elapsed time.Duration // from the start to the last reply (or failure)
	Latency Histogram     // round-trip times of answered queries
	Errs    []error       // the first few errors, for diagnosis
	Queries []Record      // with Keep: every query, by send time
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
	return fmt.Sprintf("sent %d answered %d timeouts %d failed %d late %d errors %d in %v: %.0f qps, p50 %v p99 %v",
		r.Sent, r.Answered, r.Timeouts, r.Failed, r.Late, r.Errors, r.Elapsed.Round(time.Millisecond), r.QPS(),
		r.Latency.Quantile(0.5), r.Latency.Quantile(0.99))
}

// runner is the state shared by a run's connections.
type runner struct {
	cfg   Load
	start time.Time
	next  atomic.Int64
	stop  atomic.Bool
}

// Run performs one bounded run. It returns an error when the configuration is invalid or,
// without Redial, a connection could not be opened; failures during the run are counted in
// the Result.
func (l Load) Run(ctx context.Context) (*Result, error) {
	switch l.Network {
	case "udp", "tcp", "tls", "unix":
	default:
		return nil, fmt.Errorf("load: network %q: want udp, tcp, tls or unix", l.Network)
	}
	if l.Next == nil {
		return nil, errors.New("load: Next is required")
	}
	if l.Count <= 0 && l.Duration <= 0 {
		return nil, errors.New("load: unbounded run: set Count or Duration")
	}
	if l.Rate < 0 || l.Count < 0 || l.Duration < 0 || l.Timeout < 0 || l.Retries < 0 || l.ConnQueries < 0 {
		return nil, errors.New("load: negative Rate, Count, Duration, Timeout, Retries or ConnQueries")
	}
	l.Conns = max(l.Conns, 1)
	l.InFlight = max(l.InFlight, 1)
	if l.InFlight > 65535 {
		return nil, fmt.Errorf("load: InFlight %d above 65535", l.InFlight)
	}
	if l.Timeout == 0 {
		l.Timeout = 2 * time.Second
	}
	r := &runner{cfg: l}
	ws := make([]*worker, 0, l.Conns)
	for range l.Conns {
		w := newWorker(r)
		nc, err := w.dial()
		if err != nil && !l.Redial {
			for _, w := range ws {
				w.nc.Close()
			}
			return nil, fmt.Errorf("load: %w", err)
		}
		w.nc = nc
		ws = append(ws, w)
	}
	r.start = time.Now()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() { w.run(ctx) })
	}
	wg.Wait()

	res := &Result{Rcodes: map[int]int64{}, Start: r.start}
	for _, w := range ws {
		res.Sent += w.sent
		res.Answered += w.answered
		res.Timeouts += w.timeouts
		res.Failed += w.failed
		res.Late += w.late
		res.Truncated += w.truncated
		res.Errors += w.errors
		res.Errs = append(res.Errs, w.errs...)
		for rc, n := range w.rcodes {
			if n > 0 {
				res.Rcodes[rc] += n
			}
		}
		res.Latency.Merge(&w.hist)
		res.Elapsed = max(res.Elapsed, w.last)
		res.Queries = append(res.Queries, w.recs...)
	}
	sort.Slice(res.Queries, func(i, j int) bool { return res.Queries[i].At < res.Queries[j].At })
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
