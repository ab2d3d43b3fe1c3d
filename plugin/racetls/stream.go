package racetls

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
)

// streamTransport is DNS over TLS (RFC 7858) or over TCP (RFC 7766): one
// pipelined connection per session, replies matched by ID.
type streamTransport struct {
	addr      string
	tlsConfig *tls.Config // nil: plain TCP
	timeout   time.Duration
}

func (t *streamTransport) scheme() string {
	if t.tlsConfig == nil {
		return "dns"
	}
	return "tls"
}

func (t *streamTransport) datagram() bool { return false }
func (t *streamTransport) stream() bool   { return true }

func (t *streamTransport) dial(ctx context.Context) (session, error) {
	d := net.Dialer{}
	c, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	if t.tlsConfig == nil {
		return newStreamSession(c, t.timeout, handshake{}), nil
	}
	cfg := t.tlsConfig
	if cfg.ServerName == "" {
		// As tls.Dialer does: verify the certificate for the address dialled.
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(t.addr)
	}
	tc := tls.Client(&recordConn{Conn: c}, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return newStreamSession(tc, t.timeout, handshake{tls: true, resumed: tc.ConnectionState().DidResume}), nil
}

// streamSession is one TCP or TLS connection carrying 2-byte framed messages.
type streamSession struct {
	c       net.Conn
	rc      *recordConn // under c when c is TLS over a recordConn
	timeout time.Duration
	hs      handshake
	prefix  []byte // 2 bytes: ReadFrame reads each length prefix here, the message into a buffer of its size
}

func newStreamSession(c net.Conn, timeout time.Duration, hs handshake) *streamSession {
	s := &streamSession{c: c, timeout: timeout, hs: hs, prefix: make([]byte, 2)}
	if tc, ok := c.(*tls.Conn); ok {
		s.rc, _ = tc.NetConn().(*recordConn)
	}
	return s
}

// send writes a batch of queries. Over TLS each query goes in a TLS record of its own,
// and the records of the batch in one write: a server may read one record, answer the
// query in it and wait for the socket to become readable again before it looks at the
// rest of that record (NSD 4.6 does: the other queries of a shared record sit in its TLS
// library's buffer until something else arrives).
func (s *streamSession) send(batch []byte) error {
	s.c.SetWriteDeadline(time.Now().Add(s.timeout))
	if s.rc == nil {
		_, err := s.c.Write(batch)
		return err
	}
	s.rc.hold()
	for len(batch) >= 2 {
		n := min(2+int(binary.BigEndian.Uint16(batch)), len(batch))
		if _, err := s.c.Write(batch[:n]); err != nil {
			s.rc.flush()
			return err
		}
		batch = batch[n:]
	}
	return s.rc.flush()
}

func (s *streamSession) recv() (reply, error) {
	m, err := wire.ReadFrame(s.c, s.prefix)
	if errors.Is(err, wire.ErrZeroFrame) || err == nil && !isResponse(m) { // a frame of 1 or 2 bytes in prefix, too
		// Framing can no longer be trusted.
		return reply{}, errGarbage
	}
	if err != nil {
		return reply{}, err
	}
	return reply{msg: m}, nil
}

func (s *streamSession) close() error         { return s.c.Close() }
func (s *streamSession) handshake() handshake { return s.hs }
func (s *streamSession) localAddr() net.Addr  { return s.c.LocalAddr() }

// recordConn is the TCP connection under a DoT session. While it holds, what TLS writes
// is kept, and flush sends it in one write: a batch costs one system call however many
// records it has. Writes stay in the order TLS sealed them (its sequence numbers): TLS
// writes under its own lock, and a write of the reader's (a KeyUpdate reply) while the
// writer holds or flushes is queued behind the batch.
type recordConn struct {
	net.Conn
	mu      sync.Mutex
	holding bool
	buf     []byte
}

func (c *recordConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		c.buf = append(c.buf, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *recordConn) hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

func (c *recordConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}
