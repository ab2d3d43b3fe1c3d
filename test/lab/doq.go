package lab

import (
	"bufio"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// DoQ error codes (RFC 9250 §4.3).
const (
	DoQNoError       quic.ApplicationErrorCode = 0x0
	DoQInternalError quic.ApplicationErrorCode = 0x1
	DoQProtocolError quic.ApplicationErrorCode = 0x2
)

// doqConn is one DoQ connection.
type doqConn struct {
	qc       *quic.Conn
	inflight atomic.Int32
	last     atomic.Int64 // UnixNano of the last stream opened or answered
	done     chan struct{}
	once     sync.Once
}

func (c *doqConn) touch() { c.last.Store(time.Now().UnixNano()) }

func (c *doqConn) close(code quic.ApplicationErrorCode, why string) {
	c.once.Do(func() {
		close(c.done)
		c.qc.CloseWithError(code, why)
	})
}

// serveDoQ accepts DNS-over-QUIC connections (RFC 9250) until ln closes. 0-RTT is allowed;
// handshakes (full, resumed) and 0-RTT connections are counted.
func (u *Upstream) serveDoQ(ln *quic.EarlyListener, stop chan struct{}) {
	defer u.wg.Done()
	for {
		qc, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		c := &doqConn{qc: qc, done: make(chan struct{})}
		c.touch()
		u.mu.Lock()
		if !u.up {
			u.mu.Unlock()
			qc.CloseWithError(DoQNoError, "down")
			return
		}
		u.doqConns[c] = struct{}{}
		u.wg.Add(1)
		u.mu.Unlock()
		u.stats.conns.Add(1)
		u.stats.open.Add(1)
		go u.serveDoQConn(c, stop)
	}
}

func (u *Upstream) serveDoQConn(c *doqConn, stop chan struct{}) {
	defer u.wg.Done()
	var streams sync.WaitGroup
	defer streams.Wait() // after the close below: a black-holed stream waits for it
	defer func() {
		c.close(DoQNoError, "")
		u.mu.Lock()
		delete(u.doqConns, c)
		u.mu.Unlock()
		u.stats.open.Add(-1)
	}()
	u.wg.Add(1)
	go func() { // handshake counters, and IdleClose
		defer u.wg.Done()
		select {
		case <-c.qc.HandshakeComplete():
			cs := c.qc.ConnectionState()
			u.stats.handshakes.Add(1)
			if cs.TLS.DidResume {
				u.stats.resumed.Add(1)
			}
			if cs.Used0RTT {
				u.stats.early.Add(1)
			}
		case <-c.qc.Context().Done():
			return
		}
		u.doqIdle(c)
	}()
	for {
		st, err := c.qc.AcceptStream(c.qc.Context())
		if err != nil {
			return
		}
		c.touch()
		c.inflight.Add(1)
		streams.Add(1)
		go func() {
			defer streams.Done()
			defer c.inflight.Add(-1)
			u.serveDoQStream(c, st, stop)
			c.touch()
		}()
	}
}

// doqIdle closes c when IdleClose applies to it and it has been idle (no stream open) for
// the fault's After. The connection's own idle timeout is the lab's, a transport parameter.
func (u *Upstream) doqIdle(c *doqConn) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var gen uint64
	var hit bool
	for {
		select {
		case <-c.done:
			return
		case <-c.qc.Context().Done():
			return
		case <-tick.C:
		}
		_, f, g := u.current()
		if f.Kind != IdleClose {
			continue
		}
		if gen != g+1 {
			gen, hit = g+1, u.rnd.chance(f.Prob)
		}
		if hit && c.inflight.Load() == 0 && time.Since(time.Unix(0, c.last.Load())) >= f.After {
			u.stats.faults.Add(1)
			c.close(DoQNoError, "idle")
			return
		}
	}
}

// serveDoQStream answers the query of one stream: a 2-byte framed message with ID 0, then
// FIN (RFC 9250 §4.2). A query with another ID closes the connection with
// DOQ_PROTOCOL_ERROR (§4.2.1).
func (u *Upstream) serveDoQStream(c *doqConn, st *quic.Stream, stop chan struct{}) {
	st.SetReadDeadline(time.Now().Add(frameTimeout))
	buf, err := wire.ReadFrame(bufio.NewReader(st), nil)
	if err != nil {
		st.CancelRead(quic.StreamErrorCode(DoQProtocolError))
		st.CancelWrite(quic.StreamErrorCode(DoQProtocolError))
		return
	}
	req := new(dns.Msg)
	if req.Unpack(buf) != nil || req.Response {
		c.close(DoQProtocolError, "malformed query")
		return
	}
	if req.Id != 0 {
		c.close(DoQProtocolError, "message ID not 0")
		return
	}
	u.seen(req, "quic")
	p := u.draw()
	if p.fault == BlackHole {
		select {
		case <-stop:
		case <-c.done:
		case <-c.qc.Context().Done():
		case <-st.Context().Done(): // the client gave up (STOP_SENDING)
		}
		st.CancelWrite(quic.StreamErrorCode(DoQInternalError))
		return
	}
	if !wait(p.delay, stop, c.done) {
		st.CancelWrite(quic.StreamErrorCode(DoQInternalError))
		return
	}
	out, err := wire.AppendFrame(nil, u.reply(req, p.fault, "quic"))
	if err != nil {
		st.CancelWrite(quic.StreamErrorCode(DoQInternalError))
		return
	}
	st.SetWriteDeadline(time.Now().Add(writeTimeout))
	if p.fault == Reset {
		// Half the reply, then RESET_STREAM: a stream reset mid-reply.
		st.Write(out[:len(out)/2])
		st.CancelWrite(quic.StreamErrorCode(DoQInternalError))
		return
	}
	if _, err := st.Write(out); err == nil {
		u.stats.replies.Add(1)
	}
	st.Close()
}
