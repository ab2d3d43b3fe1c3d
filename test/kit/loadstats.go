package kit

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Stats summarises the queries of a result (run with Keep) sent in a window of time.
type Stats struct {
	Sent, Failed  int
	Fails         map[string]int // failures by kind: timeout, eof, conn, SERVFAIL... (see Record.Fail)
	P50, P99, Max time.Duration  // latency of the successful queries
	QPS           float64        // queries sent per second of the window
}

// Stats summarises the whole run.
func (r *Result) Stats() Stats { return r.Window(0, r.Elapsed+time.Hour) }

// Window summarises the queries sent in [from, to) since the start of the run.
func (r *Result) Window(from, to time.Duration) Stats {
	s := Stats{Fails: map[string]int{}}
	var h Histogram
	for _, q := range r.Queries {
		if q.At < from || q.At >= to {
			continue
		}
		s.Sent++
		if q.Fail != "" {
			s.Failed++
			s.Fails[q.Fail]++
			continue
		}
		h.Record(q.Latency)
	}
	s.P50, s.P99, s.Max = h.Quantile(0.50), h.Quantile(0.99), h.Max()
	if span := min(to, r.Elapsed) - from; span > 0 {
		s.QPS = float64(s.Sent) / span.Seconds()
	}
	return s
}

// Between summarises the queries sent between two instants.
func (r *Result) Between(from, to time.Time) Stats {
	return r.Window(from.Sub(r.Start), to.Sub(r.Start))
}

// FailedBetween returns the send times of the first and last failed queries, and false when
// none failed.
func (r *Result) FailedBetween() (first, last time.Duration, ok bool) {
	for _, q := range r.Queries {
		if q.Fail == "" {
			continue
		}
		if !ok {
			first, ok = q.At, true
		}
		last = q.At
	}
	return first, last, ok
}

// FirstOK returns when the first query sent at or after from succeeded (its send time plus
// its latency), and false when none did.
func (r *Result) FirstOK(from time.Time) (time.Time, bool) {
	for _, q := range r.Queries {
		if at := r.Start.Add(q.At); !at.Before(from) && q.Fail == "" {
			return at.Add(q.Latency), true
		}
	}
	return time.Time{}, false
}

func (s Stats) String() string {
	var fails []string
	for k, v := range s.Fails {
		fails = append(fails, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(fails)
	return fmt.Sprintf("sent=%d failed=%d [%s] qps=%.0f p50=%v p99=%v max=%v",
		s.Sent, s.Failed, strings.Join(fails, " "), s.QPS,
		s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond), s.Max.Round(time.Microsecond))
}
