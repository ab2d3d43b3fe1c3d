package lab

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/miekg/dns"
)

const (
	handshakeTimeout = 5 * time.Second
	frameTimeout     = 5 * time.Second // to read the rest of a frame once it started
	writeTimeout     = 5 * time.Second
)

// conn is one stream connection (TCP, TLS or Unix).
type conn struct {
	raw       net.Conn // the accepted socket
	rw        net.Conn // raw, or the *tls.Conn over it
	br        *bufio.Reader
	transport string

	wmu       sync.Mutex // serialises writes of pipelined replies
	done      chan struct{}
	closeOnce sync.Once
	inflight  atomic.Int32
	pending   sync.WaitGroup // reply goroutines
	last      atomic.Int64   // UnixNano of the last read or write

	idleGen uint64 // 1 + the fault generation idleHit was drawn for; 0: not drawn
	idleHit bool   // whether IdleClose applies to this connection
}

func (c *conn) touch() { c.last.Store(time.Now().UnixNano()) }

func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.rw.Close()
	})
}

// reset aborts the connection with an RST (SO_LINGER 0).
func (c *conn) reset() {
	c.closeOnce.Do(func() {
		close(c.done)
		if tc, ok := c.raw.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.raw.Close()
	})
}

// accept serves ln until it closes.
func (u *Upstream) accept(ln net.Listener, transport string, stop chan struct{}) {
	u.acceptConns(ln, func(raw net.Conn) *conn {
		c := &conn{raw: raw, rw: raw, transport: transport, done: make(chan struct{})}
		if transport == "tls" {
			c.rw = tls.Server(raw, u.tlsConf)
		}
		c.br = bufio.NewReader(c.rw)
		return c
	}, func(c *conn) { u.serveConn(c, stop) })
}

// acceptConns accepts on ln until it closes. It makes each connection a lab conn with wrap,
// keeps it (so that Down closes it and Reset aborts it) and counts it, and serves it with
// serve in a goroutine of its own; when serve returns, the conn is closed and forgotten.
func (u *Upstream) acceptConns(ln net.Listener, wrap func(raw net.Conn) *conn, serve func(*conn)) {
	defer u.wg.Done()
	for {
		raw, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		c := wrap(raw)
		c.touch()
		u.mu.Lock()
		if !u.up {
			u.mu.Unlock()
			raw.Close()
			return
		}
		u.conns[c] = struct{}{}
		u.wg.Add(1)
		u.mu.Unlock()
		u.stats.conns.Add(1)
		u.stats.open.Add(1)
		go func() {
			defer u.wg.Done()
			defer func() {
				c.close()
				u.mu.Lock()
				delete(u.conns, c)
				u.mu.Unlock()
				u.stats.open.Add(-1)
			}()
			serve(c)
		}()
	}
}

// handshake runs the server side of tc's TLS handshake within handshakeTimeout and counts
// it (and a resumed session); it reports whether it completed.
func (u *Upstream) handshake(tc *tls.Conn) bool {
	tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if tc.Handshake() != nil {
		return false
	}
	tc.SetDeadline(time.Time{})
	u.stats.handshakes.Add(1)
	if tc.ConnectionState().DidResume {
		u.stats.resumed.Add(1)
	}
	return true
}

// serveConn reads pipelined queries from c and answers each in its own goroutine.
func (u *Upstream) serveConn(c *conn, stop chan struct{}) {
	if tc, ok := c.rw.(*tls.Conn); ok {
		if !u.handshake(tc) {
			return
		}
		c.touch()
	}
	for {
		buf, err := u.readFrame(c)
		if errors.Is(err, io.EOF) {
			c.pending.Wait() // the client may half-close after its last query: answer it
		}
		if err != nil {
			return
		}
		req := new(dns.Msg)
		if req.Unpack(buf) != nil || req.Response {
			return // RFC 7766 §6.2.4 lets a server close on a malformed message
		}
		u.seen(req, c.transport)
		p := u.draw()
		switch p.fault {
		case Reset:
			c.reset()
			return
		case BlackHole:
			continue
		}
		c.inflight.Add(1)
		c.pending.Add(1)
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			defer c.pending.Done()
			defer c.inflight.Add(-1)
			if !wait(p.delay, stop, c.done) {
				return
			}
			if c.write(u.reply(req, p.fault, c.transport)) == nil {
				u.stats.replies.Add(1)
			}
		}()
	}
}

// write sends one length-framed message; writes of concurrent replies do not interleave.
func (c *conn) write(msg []byte) error {
	b, err := wire.AppendFrame(nil, msg)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.rw.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.rw.Write(b); err != nil {
		c.close()
		return err
	}
	c.touch()
	return nil
}

// idleFor returns how long c may stay idle: the configured idle timeout, or Fault.After
// when IdleClose is on and was drawn for this connection (then fault is true).
func (u *Upstream) idleFor(c *conn) (d time.Duration, fault bool) {
	_, f, gen := u.current()
	if f.Kind != IdleClose {
		return u.idle, false
	}
	if c.idleGen != gen+1 { // draw once per connection and fault setting
		c.idleGen, c.idleHit = gen+1, u.rnd.chance(f.Prob)
	}
	if !c.idleHit {
		return u.idle, false
	}
	return f.After, true
}

// readFrame reads one 2-byte length-prefixed message (RFC 1035 §4.2.2). Waiting for a
// frame, it closes the connection once it has been idle (no reply pending) long enough.
func (u *Upstream) readFrame(c *conn) ([]byte, error) {
	for {
		idle, _ := u.idleFor(c)
		deadline := time.Unix(0, c.last.Load()).Add(idle)
		if c.inflight.Load() > 0 { // not idle: look again soon
			deadline = time.Now().Add(min(max(idle, 10*time.Millisecond), 500*time.Millisecond))
		}
		c.rw.SetReadDeadline(deadline)
		_, err := c.br.Peek(1)
		if err == nil {
			break
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return nil, err
		}
		idle, fault := u.idleFor(c)
		if c.inflight.Load() == 0 && time.Since(time.Unix(0, c.last.Load())) >= idle {
			if fault {
				u.stats.faults.Add(1)
			}
			return nil, err
		}
	}
	c.rw.SetReadDeadline(time.Now().Add(frameTimeout))
	buf, err := wire.ReadFrame(c.br, nil)
	if err != nil {
		return nil, err
	}
	c.touch()
	return buf, nil
}
