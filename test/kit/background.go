package kit

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Background runs loads while a test does something else (a reload, a restart) and counts
// every query answered with NOERROR and every one that was not.
//
//	bg := kit.StartBackground(kit.Load{Network: "unix", Addr: sock, Conns: 2, ConnQueries: 1, Next: next})
//	bg.WaitOK(t, 100)    // traffic flows
//	s.Reload(t, corefile)
//	bg.WaitOK(t, bg.OK()+100)
//	bg.Finish(t)         // fails t if any query failed
type Background struct {
	ok, failed atomic.Int64
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	mu      sync.Mutex
	results []*Result
	errs    []error
}

// StartBackground starts the loads. Each keeps its queries (Keep) and dials again while the
// server is absent (Redial); one without a bound runs for at most a minute (Duration).
func StartBackground(loads ...Load) *Background {
	ctx, cancel := context.WithCancel(context.Background())
	b := &Background{cancel: cancel}
	for _, l := range loads {
		l.Keep, l.Redial = true, true
		if l.Count == 0 && l.Duration == 0 {
			l.Duration = time.Minute
		}
		onReply := l.OnReply
		l.OnReply = func(i int, rtt time.Duration, rcode int) {
			if rcode == dns.RcodeSuccess {
				b.ok.Add(1)
			} else {
				b.failed.Add(1)
			}
			if onReply != nil {
				onReply(i, rtt, rcode)
			}
		}
		b.wg.Go(func() {
			res, err := l.Run(ctx)
			b.mu.Lock()
			defer b.mu.Unlock()
			if err != nil {
				b.errs = append(b.errs, err)
				return
			}
			b.results = append(b.results, res)
		})
	}
	return b
}

// OK returns the number of queries answered with NOERROR so far.
func (b *Background) OK() int64 { return b.ok.Load() }

// WaitOK waits until n queries were answered with NOERROR; it fails t after 10 s.
func (b *Background) WaitOK(t testing.TB, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); b.ok.Load() < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("background load: %d queries answered, want %d (%d failed)", b.ok.Load(), n, b.failed.Load())
		}
	}
}

// Finish stops the loads, waits for their replies and fails t when a query got no NOERROR
// answer, naming the kinds of failure (see Record.Fail and Record.Rcode).
func (b *Background) Finish(t testing.TB) {
	t.Helper()
	b.cancel()
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, err := range b.errs {
		t.Error(err)
	}
	kinds := map[string]int{}
	var failed, sent int
	for _, r := range b.results {
		for _, q := range r.Queries {
			sent++
			switch {
			case q.Fail != "":
				kinds[q.Fail]++
			case q.Rcode != dns.RcodeSuccess:
				kinds[dns.RcodeToString[q.Rcode]]++
			default:
				continue
			}
			failed++
		}
	}
	if failed > 0 {
		var list []string
		for k, n := range kinds {
			list = append(list, fmt.Sprintf("%s=%d", k, n))
		}
		sort.Strings(list)
		t.Errorf("background load: %d of %d queries failed: %s", failed, sent, strings.Join(list, " "))
	}
}
