package racetls

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stackConn records writes made from inside conn.send: the goroutine of a query.
type stackConn struct {
	net.Conn
	fromSend atomic.Int32
	writes   atomic.Int32
}

func (s *stackConn) Write(b []byte) (int, error) {
	buf := make([]byte, 64<<10)
	if bytes.Contains(buf[:runtime.Stack(buf, false)], []byte("(*conn).send")) {
		s.fromSend.Add(1)
	}
	s.writes.Add(1)
	return s.Conn.Write(b)
}

// TestWriterGoroutine: concurrent senders queue their queries and return; the
// connection's writer goroutine writes them, so no query's goroutine writes
// (or waits on) the batch of others.
func TestWriterGoroutine(t *testing.T) {
	opts := fuzzOptions(1)
	u := newFuzzUpstream(opts, 9)
	tc, sc := tlsPipe(t)
	w := &stackConn{Conn: tc}
	c := attach(u, w)
	drained := make(chan struct{})
	go func() { io.Copy(io.Discard, sc); close(drained) }()

	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fq := fuzzQueries[i%len(fuzzQueries)]
			if err := c.send(fq.call(time.Now().Add(time.Minute))); err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	waitFor(t, "the writes", func() bool {
		return w.writes.Load() > 0 && c.load() == 50 && func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return len(c.wbuf) == 0
		}()
	})
	if n := w.fromSend.Load(); n != 0 {
		t.Errorf("%d of %d writes ran on a sender's goroutine", n, w.writes.Load())
	}
	t.Logf("50 queries in %d writes", w.writes.Load())
	sc.Close()
	u.close()
	<-drained
}
