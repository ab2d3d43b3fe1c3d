//go:build !race

package racetls

import (
	"io"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestWriterBatches: queries whose goroutines are runnable together go out together. On
// one P a sender's wake-up puts the writer next in line, ahead of the other senders: were
// it to write then, each query would cost a write of its own. Not under the race detector:
// it shuffles the run queue, which batches by chance (see runtime.randomizeScheduler).
func TestWriterBatches(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	opts := fuzzOptions(1)
	u := newFuzzUpstream(opts, 10)
	tc, sc := tlsPipe(t)
	w := &stackConn{Conn: tc}
	c := attach(u, w)
	drained := make(chan struct{})
	go func() { io.Copy(io.Discard, sc); close(drained) }()

	const n = 50
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fq := fuzzQueries[i%len(fuzzQueries)]
			if err := c.send(fq.call(time.Now().Add(time.Minute))); err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	waitFor(t, "the writes", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.wbuf) == 0 && w.writes.Load() > 0
	})
	if got := w.writes.Load(); got > n/10 {
		t.Errorf("%d queries queued together went out in %d writes, want at most %d", n, got, n/10)
	}
	t.Logf("%d queries in %d writes", n, w.writes.Load())
	sc.Close()
	u.close()
	<-drained
}
