package reliability

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Stats summarises the queries of a result sent in a window of time.
type Stats struct {
	Sent, Failed  int
	Fails         map[string]int // failures by kind: timeout, eof, conn, badreply, SERVFAIL...
	P50, P99, Max time.Duration  // latency of the successful queries
	QPS           float64
}

// Stats summarises the whole run.
func (r *Result) Stats() Stats { return r.Window(0, r.Elapsed+time.Hour) }

// Window summarises the queries sent in [from, to) since the start of the run.
func (r *Result) Window(from, to time.Duration) Stats {
	s := Stats{Fails: map[string]int{}}
	var lats []time.Duration
	for _, rec := range r.recs {
		if rec.at < from || rec.at >= to {
			continue
		}
		s.Sent++
		if rec.fail != "" {
			s.Failed++
			s.Fails[rec.fail]++
			continue
		}
		lats = append(lats, rec.lat)
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	s.P50, s.P99 = percentile(lats, 0.50), percentile(lats, 0.99)
	if len(lats) > 0 {
		s.Max = lats[len(lats)-1]
	}
	span := min(to, r.Elapsed) - from
	if span > 0 {
		s.QPS = float64(s.Sent) / span.Seconds()
	}
	return s
}

// FailedBetween returns the send times of the first and last failed queries, and false when
// none failed.
func (r *Result) FailedBetween() (first, last time.Duration, ok bool) {
	for _, rec := range r.recs {
		if rec.fail == "" {
			continue
		}
		if !ok {
			first, ok = rec.at, true
		}
		last = rec.at
	}
	return first, last, ok
}

// Between summarises the queries sent between two instants.
func (r *Result) Between(from, to time.Time) Stats {
	return r.Window(from.Sub(r.Start), to.Sub(r.Start))
}

// FirstOK returns when the first query sent at or after from succeeded (its send time plus
// its latency), and false when none did.
func (r *Result) FirstOK(from time.Time) (time.Time, bool) {
	for _, rec := range r.recs {
		if at := r.Start.Add(rec.at); !at.Before(from) && rec.fail == "" {
			return at.Add(rec.lat), true
		}
	}
	return time.Time{}, false
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
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
