package unixsock

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/miekg/dns"
)

// peer is who is on the other end of a connection (SO_PEERCRED at connect time).
type peer struct {
	pid      int32 // -1: the credentials are unknown
	uid, gid uint32
	path     string
}

type peerKey struct{}

// conn serves one client connection. One goroutine reads frames; each query runs in its own
// goroutine, at most max_inflight at a time (the reader stops reading when all are taken, which
// pushes back on the client); writes are serialised, so replies go out whole and in the order
// they are ready (RFC 7766 §6.2.1.1), not the order the queries came in.
type conn struct {
	l    *listener
	c    stream
	opts options // the owner's options when the connection was accepted
	addr string  // server label

	requests prometheus.Counter // requestsTotal for addr, resolved once per connection
	writes   prometheus.Counter // writesTotal for addr

	peer          *peer
	uid           int64 // peer.key(): the share it counts in
	local, remote net.Addr

	// For eviction (share.go): whether the reader waits for a frame, the last frame read or
	// reply written in Unix nanoseconds, and (guarded by l.mu) whether it was evicted.
	waiting atomic.Bool
	active  atomic.Int64
	evicted bool

	sem  chan struct{}
	hwg  sync.WaitGroup // queries in flight
	stop chan struct{}

	stopOnce, closeOnce sync.Once

	wmu    sync.Mutex
	broken bool // a write failed: the framing is lost
	// Replies waiting to be written: the writer that finds no flush in progress writes all
	// that is queued in one system call (a resolver's A and AAAA replies go out together).
	wbuf, spare []byte
	flushing    bool

	hit  []byte // the reader's buffer for replies from the front door
	rbuf []byte // the reader's buffer for frames (a miss gets a copy)
}

// newPeer reads the credentials of c's peer.
func newPeer(c *net.UnixConn, path string) *peer {
	p := &peer{pid: -1, path: path}
	if pid, uid, gid, ok := peerCred(c); ok {
		p.pid, p.uid, p.gid = pid, uid, gid
	}
	return p
}

// key is the peer's uid for max_connections_per_uid; all peers of unknown credentials share -1.
func (p *peer) key() int64 {
	if p.pid < 0 {
		return -1
	}
	return int64(p.uid)
}

func (p *peer) uidString() string {
	if p.pid < 0 {
		return "unknown"
	}
	return strconv.FormatUint(uint64(p.uid), 10)
}

func newConn(l *listener, c stream, u *Unixsock, p *peer, seq uint16) *conn {
	cn := &conn{
		l:        l,
		c:        c,
		opts:     u.opts,
		addr:     u.addr,
		requests: requestsTotal.WithLabelValues(u.addr),
		writes:   writesTotal.WithLabelValues(u.addr),
		peer:     p,
		uid:      p.key(),
		local:    &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)},
		remote:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(seq)},
		sem:      make(chan struct{}, u.opts.maxInflight),
		stop:     make(chan struct{}),
	}
	cn.active.Store(time.Now().UnixNano())
	return cn
}

func (c *conn) serve() {
	defer c.close()
	defer c.hwg.Wait()
	defer c.flushQueued() // the door's replies of the last frames read

	r := bufio.NewReader(c.c)
	for {
		select {
		case c.sem <- struct{}{}:
		default:
			c.flushQueued() // waiting for a query in flight: what the door answered goes out first
			select {
			case c.sem <- struct{}{}:
			case <-c.stop:
				return
			}
		}
		// A frame that is already buffered is read without a system call or a deadline;
		// otherwise the door's replies are written before the reader may block.
		if !frameBuffered(r) {
			c.flushQueued()
			// Between messages the idle timeout applies; once a frame has started, the read timeout.
			c.waiting.Store(true)
			if !c.deadline(c.opts.idleTimeout) {
				return
			}
			if _, err := r.Peek(1); err != nil {
				<-c.sem
				return
			}
			c.waiting.Store(false)
			now := time.Now()
			c.active.Store(now.UnixNano())
			if !c.deadlineAt(now.Add(c.opts.readTimeout)) {
				return
			}
		} else {
			select {
			case <-c.stop:
				return
			default:
			}
			c.active.Store(time.Now().UnixNano())
		}
		buf, err := wire.ReadFrame(r, c.rbuf[:0])
		if err != nil {
			<-c.sem
			c.readError(err)
			return
		}
		c.rbuf = buf[:0]
		h, ok := header(buf)
		if !ok {
			<-c.sem
			errorsCount.WithLabelValues(c.addr, "short_frame").Inc()
			return
		}
		if d := c.l.owner.Load().door; d != nil {
			if reply, ok := d.hit(buf, c.hit[:0]); ok {
				c.hit = reply[:0]
				c.requests.Inc()
				// Queued, not written: the replies to the frames that came in together (a
				// resolver's A and AAAA) go out in one write, so the client wakes once.
				if c.queue(reply) >= maxBatch {
					c.flushQueued()
				}
				<-c.sem
				continue
			}
		}
		c.hwg.Add(1)
		go c.handle(bytes.Clone(buf), h)
	}
}

// maxBatch bounds the door's replies queued by the reader before it writes them.
const maxBatch = 32 << 10

// frameBuffered reports whether r holds a whole frame, so that reading it does not block.
func frameBuffered(r *bufio.Reader) bool {
	n := r.Buffered()
	if n < 2 {
		return false
	}
	p, _ := r.Peek(2) // buffered: no read
	return n >= 2+int(binary.BigEndian.Uint16(p))
}

// deadline sets the read deadline d from now, and reports false if the connection is stopping.
func (c *conn) deadline(d time.Duration) bool { return c.deadlineAt(time.Now().Add(d)) }

// deadlineAt sets the read deadline t, and reports false if the connection is stopping.
// stopReading closes stop before it sets a deadline in the past, so one of the two wins.
func (c *conn) deadlineAt(t time.Time) bool {
	c.c.SetReadDeadline(t)
	select {
	case <-c.stop:
		return false
	default:
		return true
	}
}

func (c *conn) readError(err error) {
	kind := "read"
	switch {
	case errors.Is(err, wire.ErrZeroFrame):
		kind = "zero_frame"
	case errors.Is(err, os.ErrDeadlineExceeded):
		select {
		case <-c.stop:
			return
		default:
		}
		kind = "read_timeout"
	case errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF):
		return
	}
	errorsCount.WithLabelValues(c.addr, kind).Inc()
}

// handle serves one message. The server is the listener's owner now, not at accept time: after a
// reload, the next query on an open connection goes to the new chain.
func (c *conn) handle(buf []byte, h dns.Header) {
	defer func() {
		<-c.sem
		c.hwg.Done()
	}()

	switch dns.DefaultMsgAcceptFunc(h) {
	case dns.MsgIgnore: // a response, not a query: answering could loop
		errorsCount.WithLabelValues(c.addr, "ignored").Inc()
		return
	case dns.MsgReject:
		errorsCount.WithLabelValues(c.addr, "formerr").Inc()
		c.writeMsg(reject(h, dns.RcodeFormatError))
		return
	case dns.MsgRejectNotImplemented:
		errorsCount.WithLabelValues(c.addr, "notimp").Inc()
		c.writeMsg(reject(h, dns.RcodeNotImplemented))
		return
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf); err != nil {
		errorsCount.WithLabelValues(c.addr, "formerr").Inc()
		c.writeMsg(reject(h, dns.RcodeFormatError))
		return
	}

	u := c.enter()
	if u == nil {
		errorsCount.WithLabelValues(c.addr, "shutdown").Inc()
		return
	}
	defer u.gate.leave()
	c.requests.Inc()
	// As dnsserver.Server.Serve does for TCP, plus the peer for Metadata.
	ctx := context.WithValue(context.Background(), dnsserver.Key{}, u.srv)
	ctx = context.WithValue(ctx, dnsserver.LoopKey{}, 0)
	ctx = context.WithValue(ctx, peerKey{}, c.peer)
	u.srv.ServeDNS(ctx, &writer{c: c}, m)
}

// enter returns the owner whose chain serves the query, counted in its gate. An owner's gate
// closes only after a newer owner took over, so a retry finds that one; nil means the chain is
// shutting down with no successor.
func (c *conn) enter() *Unixsock {
	for range 3 {
		u := c.l.owner.Load()
		if u.gate.enter() {
			return u
		}
		if c.l.owner.Load() == u {
			return nil
		}
	}
	return nil
}

func (c *conn) writeMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	return c.write(b)
}

var (
	errTooLarge = errors.New("reply larger than 65535 bytes")
	errBroken   = errors.New("connection broken by an earlier write")
)

// write queues one framed message and, unless another writer is flushing, writes the queue. A
// failed or partial write loses the framing, so it closes the connection; the other queries in
// flight on it fail their writes too.
func (c *conn) write(b []byte) error {
	if len(b) > wire.MaxFrame {
		return errTooLarge
	}
	c.wmu.Lock()
	if c.broken {
		c.wmu.Unlock()
		return errBroken
	}
	c.wbuf, _ = wire.AppendFrame(c.wbuf, b) // fits: checked above
	lead := !c.flushing
	c.flushing = true
	c.wmu.Unlock()
	if !lead {
		return nil
	}
	// Let the other runnable replies of this connection queue theirs first; when nothing else
	// runs, the write goes out at once.
	runtime.Gosched()
	return c.flush()
}

// queue appends one framed reply of the door to the queue without writing it, and returns how
// many bytes are queued. The reader writes them (flushQueued) before it may block, or a writer
// that is flushing takes them along.
func (c *conn) queue(b []byte) int {
	if len(b) > wire.MaxFrame {
		return 0 // the door renders no such reply; the query goes unanswered as on a failed write
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.broken {
		return 0
	}
	c.wbuf, _ = wire.AppendFrame(c.wbuf, b) // fits: checked above
	return len(c.wbuf)
}

// flushQueued writes the queue, unless it is empty or a writer is flushing it already.
func (c *conn) flushQueued() {
	c.wmu.Lock()
	if c.flushing || c.broken || len(c.wbuf) == 0 {
		c.wmu.Unlock()
		return
	}
	c.flushing = true
	c.wmu.Unlock()
	c.flush()
}

// flush writes the queue until it is empty.
func (c *conn) flush() error {
	for {
		c.wmu.Lock()
		if c.broken || len(c.wbuf) == 0 {
			c.wbuf = c.wbuf[:0]
			c.flushing = false
			c.wmu.Unlock()
			if c.broken {
				return errBroken
			}
			return nil
		}
		buf := c.wbuf
		c.wbuf, c.spare = c.spare[:0], nil
		c.wmu.Unlock()

		now := time.Now()
		c.active.Store(now.UnixNano())
		c.c.SetWriteDeadline(now.Add(c.opts.writeTimeout))
		c.writes.Inc() // before the write: a client that has read the reply sees it counted
		_, err := c.c.Write(buf)

		c.wmu.Lock()
		if c.spare == nil {
			c.spare = buf[:0]
		}
		if err != nil {
			c.broken = true
			c.wbuf = c.wbuf[:0]
			c.flushing = false
		}
		c.wmu.Unlock()
		if err != nil {
			errorsCount.WithLabelValues(c.addr, writeErrorKind(err)).Inc()
			c.close()
			return err
		}
	}
}

// writeErrorKind tells a client that left before its replies (it closed the connection once it
// had the answer it needed, as a resolver does after the first usable candidate) from a failure.
func writeErrorKind(err error) string {
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return "peer_closed"
	}
	return "write"
}

// stopReading makes the reader return after its current frame; queries in flight finish.
func (c *conn) stopReading() {
	c.stopOnce.Do(func() {
		close(c.stop)
		c.c.SetReadDeadline(time.Unix(1, 0))
	})
}

func (c *conn) close() error {
	var err error
	c.closeOnce.Do(func() { err = c.c.Close() })
	return err
}
