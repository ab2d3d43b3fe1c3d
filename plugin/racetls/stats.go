package racetls

import (
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"
)

// Latency buckets of the stats table: bucket i holds replies up to
// statsBase * statsGrowth^i, from 100µs to about 13 s.
const (
	statsBuckets = 48
	statsBase    = 100 * time.Microsecond
	statsGrowth  = 1.28
)

// tally counts what the stats table shows, cumulatively, plus a latency
// histogram that each report drains.
type tally struct {
	queries, wins, late, errors, reconnects, resumed, full atomic.Uint64

	hist [statsBuckets]atomic.Uint64
}

func (t *tally) observe(rtt time.Duration) {
	i := 0
	if rtt > statsBase {
		i = int(math.Ceil(math.Log(float64(rtt)/float64(statsBase)) / math.Log(statsGrowth)))
	}
	if i >= statsBuckets {
		i = statsBuckets - 1
	}
	t.hist[i].Add(1)
}

// quantiles drains the histogram and returns p50 and p99 of the replies seen
// since the previous call (upper bounds of their buckets), and their count.
func (t *tally) quantiles() (p50, p99 time.Duration, n uint64) {
	var counts [statsBuckets]uint64
	for i := range t.hist {
		counts[i] = t.hist[i].Swap(0)
		n += counts[i]
	}
	if n == 0 {
		return 0, 0, 0
	}
	bound := func(i int) time.Duration {
		return time.Duration(float64(statsBase) * math.Pow(statsGrowth, float64(i)))
	}
	var sum uint64
	for i, c := range counts {
		sum += c
		if p50 == 0 && sum*2 >= n {
			p50 = bound(i)
		}
		if sum*100 >= n*99 {
			return p50, bound(i), n
		}
	}
	return p50, bound(statsBuckets - 1), n
}

// statsTable renders the per-upstream report that stats INTERVAL logs.
func (rt *RaceTLS) statsTable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-30s %-5s %9s %9s %6s %9s %9s %9s %7s %6s %7s %5s %5s\n",
		"upstream", "trans", "queries", "wins", "win%", "ewma", "p50", "p99", "errors", "late", "reconn", "resum", "conns")
	for _, u := range rt.ups() {
		t := u.tally
		if t == nil {
			t = new(tally)
		}
		q, w := t.queries.Load(), t.wins.Load()
		pct := 0.0
		if q > 0 {
			pct = 100 * float64(w) / float64(q)
		}
		p50, p99, _ := t.quantiles()
		u.mu.Lock()
		open := len(u.conns)
		u.mu.Unlock()
		hs := t.resumed.Load() + t.full.Load()
		fmt.Fprintf(&b, "%-30s %-5s %9d %9d %6.1f %9s %9s %9s %7d %6d %7d %2d/%-2d %5d\n",
			u.name, u.tr.scheme(), q, w, pct, round(u.score()), round(p50), round(p99),
			t.errors.Load(), t.late.Load(), t.reconnects.Load(), t.resumed.Load(), hs, open)
	}
	return b.String()
}

func round(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(10 * time.Microsecond).String()
}

// statsLoop logs the table every interval until stop is closed.
func (rt *RaceTLS) statsLoop(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			log.Infof("stats\n%s", rt.statsTable())
		}
	}
}
