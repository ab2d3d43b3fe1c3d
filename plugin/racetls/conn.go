package racetls

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/miekg/dns"
)

var (
	errClosed   = errors.New("connection closed")
	errFull     = errors.New("connection at max_inflight")
	errGarbage  = errors.New("garbage on the connection")
	errHalfOpen = errors.New("half-open connection: nothing read for a whole timeout")
)

// maxResend bounds the re-sends of a query whose connection broke: a server
// that breaks every connection (garbage, resets) must not cause a reconnect loop.
const maxResend = 2

// call is one query outstanding on a connection: a race's copy for one
// upstream, or a keepalive probe (rs == nil).
type call struct {
	buf      []byte    // 2-byte length + packed query; the ID is patched per connection
	qlen     int       // length of the question section in buf
	rs       *race     // nil for probes
	ctr      *counters // the metrics of the request's server label
	deadline time.Time
	sent     time.Time
	resent   int // times re-sent after its connection broke
}

func (cl *call) question() []byte { return cl.buf[2+wire.HeaderLen : 2+wire.HeaderLen+cl.qlen] }

// conn is one pipelined DNS-over-TLS connection (RFC 7766 §6.2.1.1, RFC 7858
// §3.3). One reader goroutine demultiplexes replies by message ID; one writer
// goroutine writes what senders queued, in batches (see writeLoop); IDs are
// allocated per connection so that concurrent queries never collide.
type conn struct {
	u       *upstream
	s       session
	local   net.Addr // s's local address, for dnstap
	created time.Time

	mu      sync.Mutex
	pending map[uint16]*call
	nextID  uint16
	dead    bool
	// Queries waiting to be written. The connection's writer goroutine writes everything
	// queued in one write (over TLS, a record per query: see streamSession.send), so that
	// under load a connection pays for system calls per batch, not per query, and a
	// query's own goroutine never writes (or waits on) other queries' batches.
	wbuf, spare []byte
	wake        chan struct{} // one token: wbuf has something
	wdone       chan struct{} // closed when the writer has returned

	lastRead  atomic.Int64 // unix nanoseconds of the last frame read
	lastWrite atomic.Int64 // unix nanoseconds of the last frame written
	idle      atomic.Int64 // probe interval in nanoseconds, lowered by RFC 7828 edns-tcp-keepalive

	once sync.Once
	done chan struct{}
}

func newConn(u *upstream, s session) *conn {
	now := time.Now()
	c := &conn{
		u:       u,
		s:       s,
		local:   s.localAddr(),
		created: now,
		pending: make(map[uint16]*call),
		nextID:  uint16(rand.Uint32()),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		wdone:   make(chan struct{}),
	}
	c.lastRead.Store(now.UnixNano())
	c.lastWrite.Store(now.UnixNano())
	c.idle.Store(int64(u.opts.keepalive))
	return c
}

// load returns the number of outstanding queries.
func (c *conn) load() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return -1
	}
	return len(c.pending)
}

// send registers cl under a fresh ID and writes it.
func (c *conn) send(cl *call) error {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return errClosed
	}
	// Probes (no race) may pass max_inflight, but never past the 65536 IDs there are: the
	// search for a free ID below must end.
	if (cl.rs != nil && len(c.pending) >= c.u.opts.maxInflight) || len(c.pending) > 0xffff {
		c.mu.Unlock()
		return errFull
	}
	if cl.ctr == nil {
		cl.ctr = c.u.ctr
	}
	id := c.nextID
	for c.pending[id] != nil {
		id++
	}
	c.nextID = id + 1
	binary.BigEndian.PutUint16(cl.buf[2:], id)
	cl.sent = time.Now()
	c.pending[id] = cl
	// The frame is copied while mu is held: once fail has taken the call over (it
	// takes mu first), it may patch cl.buf for another connection.
	c.wbuf = append(c.wbuf, cl.buf...)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	c.u.sent(cl.sent)
	cl.ctr.inflight.Inc()
	return nil
}

// writeLoop is the connection's writer: it writes what is queued, batch after batch,
// until the connection is dead. A failed write fails the connection, which re-sends
// every call in pending, the queued ones included.
func (c *conn) writeLoop() {
	defer close(c.wdone)
	for {
		select {
		case <-c.done:
			return
		case <-c.wake:
		}
		// A sender's wake-up puts the writer next in line on its P, ahead of the query
		// goroutines already runnable there: yield once so that they queue their queries
		// first, and the batch holds them all (one system call rather than one per query).
		runtime.Gosched()
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			return
		}
		if len(c.wbuf) == 0 { // a token left by a send whose query went out in the last batch
			c.mu.Unlock()
			continue
		}
		buf := c.wbuf
		c.wbuf, c.spare = c.spare[:0], nil
		c.mu.Unlock()

		err := c.s.send(buf)
		c.lastWrite.Store(time.Now().UnixNano())
		if err != nil {
			c.fail(err, kindConn)
			return
		}
		c.mu.Lock()
		if c.spare == nil {
			c.spare = buf[:0]
		}
		c.mu.Unlock()
	}
}

// readLoop reads replies until the session breaks.
func (c *conn) readLoop() {
	for {
		r, err := c.s.recv()
		if err != nil {
			kind := ""
			if errors.Is(err, errGarbage) {
				kind = kindGarbage
			}
			c.fail(err, kind)
			return
		}
		now := time.Now()
		c.lastRead.Store(now.UnixNano())
		if r.err != nil {
			c.queryFailed(r.id, r.err)
			continue
		}
		c.reply(r.msg, now)
	}
}

// queryFailed ends the call id with its own failure: the session lives on, the race
// moves on to another upstream.
func (c *conn) queryFailed(id uint16, err error) {
	u := c.u
	c.mu.Lock()
	cl := c.pending[id]
	if cl == nil {
		c.mu.Unlock()
		return
	}
	delete(c.pending, id)
	c.mu.Unlock()
	cl.ctr.inflight.Dec()
	u.slotFreed()
	cl.ctr.errorf(kindOf(err))
	u.observe(time.Since(cl.sent), false)
	if cl.rs != nil {
		cl.rs.deliver(result{u: u, ctr: cl.ctr, local: c.local, err: err})
	}
}

// reply routes the message m to its call.
func (c *conn) reply(m []byte, now time.Time) {
	u := c.u
	id := binary.BigEndian.Uint16(m)
	c.mu.Lock()
	cl := c.pending[id]
	if cl == nil {
		c.mu.Unlock()
		u.ctr.errorf(kindUnknown)
		return
	}
	// A reply with the call's ID but not its question (none at all: RFC 1035 lets an
	// error reply leave it out, as NSD does for a class it does not serve or a malformed
	// OPT) is still the upstream's answer to this query: the ID is the connection's, and
	// each DoQ stream, DoH request or UDP socket carries one query. forward takes it as
	// final too (state.Match fails: FORMERR to the client), so it ends the call as a
	// failure that never wins, rather than leaving the race to wait for its deadline.
	wrong := !wire.SameQuestion(cl.question(), m)
	delete(c.pending, id)
	c.mu.Unlock()
	cl.ctr.inflight.Dec()
	u.slotFreed()

	u.answered.Store(true)
	rtt := now.Sub(cl.sent)
	cl.ctr.reply(rtt)
	rc := wire.Rcode(m)
	ok := isWinner(rc) && !wrong
	u.observe(rtt, ok)
	switch {
	case wrong:
		cl.ctr.errorf(kindMismatch)
	case !ok:
		cl.ctr.errorf(rcodeKind(rc))
	}
	if cl.rs == nil {
		if !wrong {
			c.probeReply(m)
		}
		return
	}
	res := result{u: u, ctr: cl.ctr, local: c.local, msg: m, rcode: rc, wrong: wrong}
	if ok && cl.rs.claim() {
		// The first reply that may win is unpacked here, on the reader's long-lived
		// goroutine, not on the query's: that one is new per UDP query, starts with a small
		// stack, and miekg/dns's unpacking runs deep enough to have the runtime copy it to
		// a bigger one, for every query.
		res.m = new(dns.Msg)
		if res.m.Unpack(m) != nil {
			res.m, res.bad = nil, true
			cl.ctr.errorf(kindGarbage)
			cl.rs.unclaim()
		}
	}
	if !cl.rs.deliver(res) {
		cl.ctr.lateReply()
	}
}

// fail closes the connection once, and re-sends or fails what was in flight.
// kind, when set, is counted as an error of the upstream.
func (c *conn) fail(err error, kind string) {
	c.once.Do(func() {
		c.mu.Lock()
		c.dead = true
		pending := c.pending
		c.pending = nil
		c.mu.Unlock()

		c.s.close()
		close(c.done)

		u := c.u
		if kind != "" {
			u.ctr.errorf(kind)
		}
		u.connDown(c, err)
		now := time.Now()
		for _, cl := range pending {
			cl.ctr.inflight.Dec()
			if cl.rs == nil || cl.rs.finished() {
				continue
			}
			if cl.resent >= maxResend || !now.Before(cl.deadline) {
				cl.ctr.errorf(kindConn)
				u.observe(u.opts.timeout, false)
				cl.rs.deliver(result{u: u, ctr: cl.ctr, err: err})
				continue
			}
			cl.resent++
			cl.rs.nudge()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				u.sendWait(cl)
			}()
		}
		u.slotFreed()
	})
}

// watchdog expires stale calls, detects half-open connections and keeps an
// idle connection warm with a probe, until the connection is closed.
func (c *conn) watchdog() {
	t := time.NewTicker(c.u.opts.tick)
	defer t.Stop()
	c.probe() // learn the server's idle timeout and a first RTT
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			c.check(now)
		}
	}
}

func (c *conn) check(now time.Time) {
	u := c.u
	var expired []*call
	var oldest time.Time
	c.mu.Lock()
	for id, cl := range c.pending {
		if oldest.IsZero() || cl.sent.Before(oldest) {
			oldest = cl.sent
		}
		// Calls are kept past their deadline for one more timeout so that a
		// late reply is read and counted rather than reported as unknown.
		if now.Sub(cl.deadline) > u.opts.timeout {
			delete(c.pending, id)
			expired = append(expired, cl)
		}
	}
	c.mu.Unlock()
	for _, cl := range expired {
		cl.ctr.inflight.Dec()
		cl.ctr.errorf(kindTimeout)
		u.observe(u.opts.timeout, false)
		if cl.rs != nil {
			cl.rs.deliver(result{u: u, ctr: cl.ctr, err: errTimeout})
		}
	}
	if len(expired) > 0 {
		u.slotFreed()
	}

	lastRead := time.Unix(0, c.lastRead.Load())
	if !oldest.IsZero() && now.Sub(oldest) > u.opts.timeout && lastRead.Before(oldest) {
		c.fail(errHalfOpen, kindHalfOpen)
		return
	}
	// Probe on the last tick before the connection would have been idle too long.
	if now.Sub(time.Unix(0, c.lastWrite.Load()))+u.opts.tick >= time.Duration(c.idle.Load()) {
		c.probe()
	}
}
