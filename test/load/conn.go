package load

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// slot is an outstanding query, indexed by message ID.
type slot struct {
	gen  uint64        // 0 when free
	sent time.Duration // since runner.start
	k    int
}

type pending struct {
	id  uint16
	gen uint64
}

// conn is one socket: a sender, a reader and a timeout sweeper.
type conn struct {
	r      *runner
	nc     net.Conn
	stream bool
	window chan struct{} // one token per outstanding query

	mu     sync.Mutex
	slots  []slot // by ID
	fifo   []pending
	gen    uint64
	nextID uint16

	closing atomic.Bool

	// owned by the sender
	sent int64
	// owned by the reader
	answered, late, truncated int64
	rcodes                    [16]int64
	hist                      Histogram
	last                      time.Duration
	// shared
	timeouts, errors atomic.Int64
	errMu            sync.Mutex
	errs             []error
}

func dial(r *runner) (*conn, error) {
	nc, err := net.Dial(r.cfg.Network, r.cfg.Addr)
	if err != nil {
		return nil, err
	}
	if uc, ok := nc.(*net.UDPConn); ok {
		// Deep buffers so that a burst of replies is not dropped while the reader is descheduled.
		uc.SetReadBuffer(4 << 20)
		uc.SetWriteBuffer(1 << 20)
	}
	return &conn{
		r:      r,
		nc:     nc,
		stream: r.cfg.Network == "unix",
		window: make(chan struct{}, r.cfg.InFlight),
		slots:  make([]slot, 65536),
	}, nil
}

func (c *conn) fail(err error) {
	c.errors.Add(1)
	c.errMu.Lock()
	if len(c.errs) < 5 {
		c.errs = append(c.errs, err)
	}
	c.errMu.Unlock()
}

// run sends until the run is over, waits for the outstanding replies, then closes.
func (c *conn) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(c.read)
	sweepDone := make(chan struct{})
	wg.Go(func() { c.sweep(sweepDone) })

	c.send(ctx)

	// Drain: take every token back, i.e. wait until nothing is outstanding. The sweeper
	// times out what never comes back, so this ends within Timeout.
	for range cap(c.window) {
		c.window <- struct{}{}
	}
	c.closing.Store(true)
	close(sweepDone)
	c.nc.Close()
	wg.Wait()
	if c.last == 0 {
		c.last = time.Since(c.r.start)
	}
}

func (c *conn) send(ctx context.Context) {
	cfg := &c.r.cfg
	batch := 1
	if c.stream && cfg.Rate == 0 && cfg.Schedule == nil {
		batch = 32 // coalesce writes when saturating a stream
	}
	buf := make([]byte, 0, 64*1024)
	for {
		select {
		case c.window <- struct{}{}:
		case <-ctx.Done():
			return
		}
		k, ok := c.r.take(ctx)
		if !ok {
			<-c.window
			return
		}
		buf = buf[:0]
		var err error
		if buf, err = c.add(buf, k); err != nil {
			<-c.window
			c.fail(err)
			continue
		}
		for n := 1; n < batch; n++ {
			select {
			case c.window <- struct{}{}:
			default:
				n = batch
				continue
			}
			k, ok := c.r.take(ctx)
			if !ok {
				<-c.window
				break
			}
			if buf, err = c.add(buf, k); err != nil {
				<-c.window
				c.fail(err)
			}
		}
		if _, err := c.nc.Write(buf); err != nil {
			// UDP on loopback reports ECONNREFUSED on writes when nothing listens; the
			// queries written stay outstanding and time out.
			c.fail(err)
			if c.stream {
				return
			}
		}
	}
}

// add registers query k under a free ID and appends it, framed for streams, to buf.
func (c *conn) add(buf []byte, k int) ([]byte, error) {
	q := c.r.cfg.Next(k)
	c.mu.Lock()
	id := c.nextID
	for c.slots[id].gen != 0 {
		id++
	}
	c.nextID = id + 1
	c.gen++
	gen := c.gen
	c.mu.Unlock()

	start := len(buf)
	if c.stream {
		buf = append(buf, 0, 0)
	}
	buf, err := appendQuery(buf, id, q, c.r.cfg.EDNS)
	if err != nil {
		return buf[:start], err
	}
	if c.stream {
		binary.BigEndian.PutUint16(buf[start:], uint16(len(buf)-start-2))
	}
	c.mu.Lock()
	c.slots[id] = slot{gen: gen, sent: time.Since(c.r.start), k: k}
	c.fifo = append(c.fifo, pending{id, gen})
	c.mu.Unlock()
	c.sent++
	return buf, nil
}

func (c *conn) read() {
	if c.stream {
		br := bufio.NewReaderSize(c.nc, 64*1024)
		var msg []byte
		for {
			var l [2]byte
			if _, err := io.ReadFull(br, l[:]); err != nil {
				c.readErr(err)
				return
			}
			n := int(binary.BigEndian.Uint16(l[:]))
			if cap(msg) < n {
				msg = make([]byte, n)
			}
			msg = msg[:n]
			if _, err := io.ReadFull(br, msg); err != nil {
				c.readErr(err)
				return
			}
			c.reply(msg)
		}
	}
	buf := make([]byte, 65536)
	for {
		n, err := c.nc.Read(buf)
		if err != nil {
			if c.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			c.fail(err) // e.g. ECONNREFUSED: keep reading
			continue
		}
		c.reply(buf[:n])
	}
}

func (c *conn) readErr(err error) {
	if !c.closing.Load() && !errors.Is(err, net.ErrClosed) {
		c.fail(err)
	}
}

func (c *conn) reply(msg []byte) {
	if len(msg) < 12 {
		c.fail(errors.New("short reply"))
		return
	}
	id := binary.BigEndian.Uint16(msg)
	now := time.Since(c.r.start)
	c.mu.Lock()
	s := &c.slots[id]
	if s.gen == 0 {
		c.mu.Unlock()
		c.late++
		return
	}
	rtt, k := now-s.sent, s.k
	s.gen = 0
	c.mu.Unlock()
	<-c.window

	rcode := int(msg[3] & 0x0f)
	if msg[2]&0x02 != 0 {
		c.truncated++
	}
	c.answered++
	c.rcodes[rcode]++
	c.hist.Record(rtt)
	c.last = now
	if f := c.r.cfg.OnReply; f != nil {
		f(k, rtt, rcode)
	}
	if f := c.r.cfg.OnMessage; f != nil {
		f(k, rtt, msg)
	}
}

// sweep times out queries outstanding longer than Timeout, oldest first.
func (c *conn) sweep(done <-chan struct{}) {
	timeout := c.r.cfg.Timeout
	tick := time.NewTicker(min(max(timeout/8, time.Millisecond), 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		now := time.Since(c.r.start)
		var expired []int
		c.mu.Lock()
		i := 0
		for ; i < len(c.fifo); i++ {
			p := c.fifo[i]
			s := &c.slots[p.id]
			if s.gen != p.gen {
				continue // answered
			}
			if now-s.sent < timeout {
				break
			}
			expired = append(expired, s.k)
			s.gen = 0
		}
		c.fifo = append(c.fifo[:0], c.fifo[i:]...)
		c.mu.Unlock()
		for _, k := range expired {
			<-c.window
			c.timeouts.Add(1)
			if f := c.r.cfg.OnReply; f != nil {
				f(k, 0, -1)
			}
		}
	}
}
