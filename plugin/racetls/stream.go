package racetls

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
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
	if t.tlsConfig == nil {
		c, err := d.DialContext(ctx, "tcp", t.addr)
		if err != nil {
			return nil, err
		}
		return &streamSession{c: c, timeout: t.timeout}, nil
	}
	c, err := (&tls.Dialer{NetDialer: &d, Config: t.tlsConfig}).DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*tls.Conn)
	return &streamSession{c: tc, timeout: t.timeout, hs: handshake{tls: true, resumed: tc.ConnectionState().DidResume}}, nil
}

// streamSession is one TCP or TLS connection carrying 2-byte framed messages.
type streamSession struct {
	c       net.Conn
	timeout time.Duration
	hs      handshake
}

func (s *streamSession) send(batch []byte) error {
	s.c.SetWriteDeadline(time.Now().Add(s.timeout))
	_, err := s.c.Write(batch)
	return err
}

func (s *streamSession) recv() (reply, error) {
	m, err := wire.ReadFrame(s.c, nil)
	if errors.Is(err, wire.ErrZeroFrame) || err == nil && !isResponse(m) {
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
