package racetls

import (
	"context"
	"errors"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

var (
	errDown = errors.New("upstream down")
	errBusy = errors.New("upstream busy: every connection at max_inflight")
)

// upstream is one resolver and its pool of pipelined connections (sessions of its transport).
type upstream struct {
	addr     string // IP:port
	name     string // the metrics' to label: SCHEME://IP:port
	tr       transport
	opts     *options
	nameFunc func() string // returns name: the racetls/upstream metadata, made once
	// fromFile marks an upstream listed by a resolv.conf-style file: it goes when the
	// file stops listing it.
	fromFile bool
	ctr      *counters // under the block's server label: connections, probes
	tally    *tally    // behind the stats table; nil when it is off
	byServer atomic.Pointer[map[string]*counters]

	mu          sync.Mutex
	conns       []*conn
	dialing     int
	dialErr     error // error of the last dial, nil after a successful one
	lost        int   // connections lost and not yet re-established
	redialDelay time.Duration
	changed     chan struct{} // closed and replaced when a connection or a slot frees up
	stopped     bool

	answered atomic.Bool  // a reply was read since start: readiness
	dials    atomic.Int64 // sessions opened since start
	waiters  atomic.Int32
	ewma     atomic.Uint64 // float64 nanoseconds
	asked    atomic.Int64  // unix nanoseconds of the first query or probe sent, until the first reply

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

func newUpstream(addr string, tr transport, opts *options) *upstream {
	u := &upstream{
		addr:    addr,
		name:    tr.scheme() + "://" + addr,
		tr:      tr,
		opts:    opts,
		changed: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	u.nameFunc = func() string { return u.name }
	return u
}

// start dials the upstream's connections in the background and keeps them up.
func (u *upstream) start(server string) {
	if u.tally == nil && u.opts.stats > 0 {
		u.tally = new(tally)
	}
	u.ctr = newCounters(server, u.name, u.tr.scheme(), u.tally)
	u.wg.Add(1)
	go u.run()
}

// close stops the upstream and waits for all its goroutines.
func (u *upstream) close() {
	u.mu.Lock()
	u.stopped = true
	conns := append([]*conn(nil), u.conns...)
	u.mu.Unlock()
	close(u.stop)
	for _, c := range conns {
		c.fail(errClosed, "")
	}
	u.wg.Wait()
}

// run keeps opts.conns connections open: it re-dials as soon as one is lost,
// not when a query next needs it, with backoff while dials fail or
// connections die young.
func (u *upstream) run() {
	defer u.wg.Done()
	for {
		u.mu.Lock()
		need := !u.stopped && len(u.conns)+u.dialing < u.opts.conns
		delay := u.redialDelay
		if need {
			u.dialing++
		}
		u.mu.Unlock()
		if !need {
			select {
			case <-u.kick:
				continue
			case <-u.stop:
				return
			}
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-u.stop:
				u.mu.Lock()
				u.dialing--
				u.mu.Unlock()
				return
			}
		}
		if err := u.dial(true); err != nil {
			u.mu.Lock()
			u.redialDelay = backoff(u.redialDelay)
			u.mu.Unlock()
		}
	}
}

func backoff(d time.Duration) time.Duration {
	const lo, hi = 50 * time.Millisecond, 2 * time.Second
	switch {
	case d < lo:
		return lo
	case 2*d > hi:
		return hi
	}
	return 2 * d
}

// dial opens one connection; the caller has counted it in u.dialing.
func (u *upstream) dial(maintain bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), u.opts.timeout)
	go func() {
		select {
		case <-u.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer cancel()
	s, err := u.tr.dial(ctx)

	u.mu.Lock()
	u.dialing--
	if err != nil && u.stopped {
		u.mu.Unlock()
		return err
	}
	if err != nil {
		wasUp := u.dialErr == nil
		u.dialErr = err
		u.mu.Unlock()
		u.ctr.errorf(kindDial)
		if wasUp {
			log.Warningf("Upstream %s unreachable, retrying: %s", u.name, err)
		}
		u.broadcast()
		return err
	}
	if u.stopped {
		u.mu.Unlock()
		s.close()
		return errClosed
	}
	if u.dialErr != nil {
		log.Infof("Upstream %s reachable again", u.name)
	}
	u.dialErr = nil
	if maintain && u.lost > 0 {
		u.lost--
		u.ctr.reconnect()
	}
	u.dials.Add(1)
	c := newConn(u, s)
	u.conns = append(u.conns[:len(u.conns):len(u.conns)], c) // copy on write, see connDown
	u.wg.Add(4)
	u.mu.Unlock()

	// A 0-RTT session is in use before its handshake completes: count it when it does.
	go func() { defer u.wg.Done(); u.ctr.handshake(s.handshake()) }()

	u.ctr.conns.Inc()
	go func() { defer u.wg.Done(); c.readLoop() }()
	go func() { defer u.wg.Done(); c.watchdog() }()
	go func() { defer u.wg.Done(); c.writeLoop() }()
	u.broadcast()
	return nil
}

// connDown forgets the broken connection c and wakes run to replace it.
func (u *upstream) connDown(c *conn, err error) {
	u.mu.Lock()
	// Copy on write: pick iterates over a snapshot without the lock.
	conns := make([]*conn, 0, len(u.conns))
	for _, x := range u.conns {
		if x != c {
			conns = append(conns, x)
		}
	}
	u.conns = conns
	if !u.stopped {
		u.lost++
		if time.Since(c.created) < time.Second {
			u.redialDelay = backoff(u.redialDelay)
		} else {
			u.redialDelay = 0
		}
	}
	stopped := u.stopped
	u.mu.Unlock()
	u.ctr.conns.Dec()
	if !stopped && err != nil && !errors.Is(err, errClosed) {
		log.Debugf("Connection to %s lost: %s", u.name, err)
	}
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// pick returns the least loaded live connection with a free slot, or nil.
// u.conns is copy-on-write, so the snapshot can be read without the lock.
func (u *upstream) pick() *conn {
	u.mu.Lock()
	conns := u.conns
	u.mu.Unlock()
	var best *conn
	low := u.opts.maxInflight
	for _, c := range conns {
		if l := c.load(); l >= 0 && l < low {
			best, low = c, l
		}
	}
	return best
}

// datagram reports whether the upstream's transport runs over UDP.
func (u *upstream) datagram() bool { return u.tr.datagram() }

// down reports whether the upstream has no connection and its last dial failed.
func (u *upstream) down() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.conns) == 0 && u.dialErr != nil
}

// send writes cl on a connection with a free slot and returns the connection's local
// address. When none is free it waits, in the background, for one (a connection being
// dialled or a slot freed) until cl's deadline, and returns nil. It fails at once when
// the upstream is down or saturated, so that the race moves on to the next upstream.
func (u *upstream) send(cl *call) (net.Addr, error) {
	for range 3 {
		c := u.pick()
		if c == nil {
			break
		}
		if err := c.send(cl); err == nil {
			return c.local, nil
		}
	}
	u.mu.Lock()
	switch {
	case u.stopped, len(u.conns) == 0 && u.dialErr != nil:
		u.mu.Unlock()
		return nil, errDown
	case len(u.conns) < u.opts.conns || u.dialing > 0:
		// A connection is on its way: wait for it.
	case len(u.conns) < u.opts.maxConns:
		// Every connection is full: one more, on demand.
		u.dialing++
		u.wg.Add(1)
		go func() { defer u.wg.Done(); u.dial(false) }()
	default:
		u.mu.Unlock()
		return nil, errBusy
	}
	u.mu.Unlock()
	u.wg.Add(1)
	go func() { defer u.wg.Done(); u.sendWait(cl) }()
	return nil, nil
}

// sendWait writes cl as soon as a connection has a free slot, or fails it at
// its deadline.
func (u *upstream) sendWait(cl *call) {
	u.waiters.Add(1)
	defer u.waiters.Add(-1)
	t := time.NewTimer(time.Until(cl.deadline))
	defer t.Stop()
	for {
		u.mu.Lock()
		ch := u.changed
		u.mu.Unlock()
		if cl.rs.finished() {
			return
		}
		if c := u.pick(); c != nil && c.send(cl) == nil {
			return
		}
		select {
		case <-ch:
		case <-t.C:
			cl.ctr.errorf(kindConn)
			cl.rs.deliver(result{u: u, ctr: cl.ctr, err: errTimeout})
			return
		case <-u.stop:
			cl.rs.deliver(result{u: u, ctr: cl.ctr, err: errClosed})
			return
		}
	}
}

// slotFreed wakes senders waiting for a slot, if there are any.
func (u *upstream) slotFreed() {
	if u.waiters.Load() > 0 {
		u.broadcast()
	}
}

func (u *upstream) broadcast() {
	u.mu.Lock()
	close(u.changed)
	u.changed = make(chan struct{})
	u.mu.Unlock()
}

// observe feeds one reply's latency into the upstream's EWMA. Failures count
// as slower than they were, so that failing upstreams sink in the order.
func (u *upstream) observe(rtt time.Duration, ok bool) {
	const (
		alpha = 0.2
		// A reply is counted at most this many times the average: an occasional stall
		// (a 300 ms outlier of an 8 ms upstream) must not push the fastest upstream out
		// of the K raced for the next many queries, while a real slowdown still shows
		// within a few replies (the average can grow 1.4× per reply).
		clamp = 3
	)
	for {
		old := u.ewma.Load()
		f := math.Float64frombits(old)
		n := float64(rtt)
		if f != 0 && n > clamp*f {
			n = clamp * f
		}
		if !ok {
			// Failures are penalised in full, so that a failing upstream drops back at once.
			n = float64(rtt + u.opts.timeout/4)
		}
		if f != 0 {
			n = f + alpha*(n-f)
		}
		if u.ewma.CompareAndSwap(old, math.Float64bits(n)) {
			return
		}
	}
}

// score returns the EWMA latency. Before the first reply it is the time the
// first query has been waiting, 0 when none was sent: an upstream not measured
// yet is tried first, but a slow one does not stay "fastest" until it answers.
func (u *upstream) score() time.Duration {
	if e := u.ewma.Load(); e != 0 {
		return time.Duration(math.Float64frombits(e))
	}
	if a := u.asked.Load(); a != 0 {
		return time.Since(time.Unix(0, a))
	}
	return 0
}

// sent notes that a query or probe went out, for score before the first reply.
func (u *upstream) sent(now time.Time) {
	if u.ewma.Load() == 0 && u.asked.Load() == 0 {
		u.asked.CompareAndSwap(0, now.UnixNano())
	}
}
