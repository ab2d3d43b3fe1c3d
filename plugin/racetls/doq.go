package racetls

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/quic-go/quic-go"
)

// DoQ error codes (RFC 9250 §4.3).
const (
	doqNoError          quic.ApplicationErrorCode = 0x0
	doqInternalError    quic.ApplicationErrorCode = 0x1
	doqProtocolError    quic.ApplicationErrorCode = 0x2
	doqRequestCancelled quic.StreamErrorCode      = 0x3
	doqExcessiveLoad    quic.ApplicationErrorCode = 0x4
)

// quicIdleTimeout is the idle timeout racetls offers; the connection uses the lower of it
// and the server's (RFC 9000 §10.1), and quic-go sends keep-alive PINGs at half of that.
const quicIdleTimeout = 30 * time.Second

// quicTransport is DNS over QUIC (RFC 9250): one QUIC connection per session, one
// bidirectional stream per query, ALPN "doq", message ID 0 on the wire and the 2-byte
// length prefix. Sessions resume, and a resumed one sends its first queries as 0-RTT
// early data where the server accepts it (RFC 9250 §4.5).
type quicTransport struct {
	addr      string
	tlsConfig *tls.Config
	opts      *options
}

func (t *quicTransport) scheme() string { return "quic" }
func (t *quicTransport) datagram() bool { return true }
func (t *quicTransport) stream() bool   { return false }

func (t *quicTransport) dial(ctx context.Context) (session, error) {
	qc, err := quic.DialAddrEarly(ctx, t.addr, t.tlsConfig, &quic.Config{
		HandshakeIdleTimeout: t.opts.timeout,
		MaxIdleTimeout:       quicIdleTimeout,
		KeepAlivePeriod:      t.opts.keepalive,
	})
	if err != nil {
		return nil, err
	}
	q := &quicSession{qc: qc}
	q.msgSession = newMsgSession(&msgSession{
		exchange: q.exchange,
		closed:   qc.Context().Done(),
		cause:    func() error { return doqClosed(context.Cause(qc.Context())) },
		fatal:    func(error) bool { return qc.Context().Err() != nil },
		onClose:  func() { qc.CloseWithError(doqNoError, "") },
		local:    qc.LocalAddr(),
	})
	return q, nil
}

// quicSession is one QUIC connection.
type quicSession struct {
	*msgSession
	qc *quic.Conn
}

// handshake waits for the handshake to complete: a 0-RTT connection is in use before.
func (q *quicSession) handshake() handshake {
	select {
	case <-q.qc.HandshakeComplete():
	case <-q.qc.Context().Done():
		return handshake{}
	}
	cs := q.qc.ConnectionState()
	return handshake{tls: true, resumed: cs.TLS.DidResume, early: cs.Used0RTT}
}

func (q *quicSession) exchange(ctx context.Context, m []byte) ([]byte, error) {
	id := binary.BigEndian.Uint16(m)
	// No stream before the handshake completes, so no 0-RTT data: quic-go v0.64 races when a
	// stream opens while the peer's transport parameters are applied (the race detector
	// shows it; quic-go issue 4303, open). A reconnect costs one round trip more; the
	// connections are long-lived.
	select {
	case <-q.qc.HandshakeComplete():
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-q.qc.Context().Done():
		return nil, context.Cause(q.qc.Context())
	}
	st, err := q.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() {
		st.CancelRead(doqRequestCancelled)
		st.CancelWrite(doqRequestCancelled)
	})
	defer stop()
	// RFC 9250 §4.2.1: the message ID is 0 on the wire; the stream identifies the query.
	out := make([]byte, 0, 2+len(m))
	out, _ = wire.AppendFrame(out, m)
	binary.BigEndian.PutUint16(out[2:], 0)
	if _, err := st.Write(out); err != nil {
		return nil, doqErr(err)
	}
	// RFC 9250 §4.2: the client indicates the end of its query with a STREAM FIN.
	st.Close()
	r, err := doqReply(st, id)
	if errors.Is(err, errDoQID) {
		// RFC 9250 §4.2.1: a non-zero ID is a protocol error.
		st.CancelRead(quic.StreamErrorCode(doqProtocolError))
	}
	return r, err
}

// doqReply reads the reply from a DoQ stream: one 2-byte framed message with ID 0,
// returned with the query's ID id.
func doqReply(st io.Reader, id uint16) ([]byte, error) {
	r, err := wire.ReadFrame(st, nil)
	if err != nil {
		return nil, doqErr(err)
	}
	if len(r) < wire.HeaderLen || binary.BigEndian.Uint16(r) != 0 {
		return nil, &queryError{kind: kindGarbage, err: errDoQID}
	}
	binary.BigEndian.PutUint16(r, id)
	return r, nil
}

// doqClosed names the RFC 9250 §4.3 code the server closed the connection with.
func doqClosed(err error) error {
	var ae *quic.ApplicationError
	if !errors.As(err, &ae) || !ae.Remote {
		return err
	}
	switch ae.ErrorCode {
	case doqNoError:
		return fmt.Errorf("DoQ connection closed by the server: %w", errClosed)
	case doqInternalError:
		return fmt.Errorf("DoQ connection closed by the server: DOQ_INTERNAL_ERROR")
	case doqProtocolError:
		return fmt.Errorf("DoQ connection closed by the server: DOQ_PROTOCOL_ERROR")
	case doqExcessiveLoad:
		return fmt.Errorf("DoQ connection closed by the server: DOQ_EXCESSIVE_LOAD")
	}
	return fmt.Errorf("DoQ connection closed by the server, code %#x", uint64(ae.ErrorCode))
}

var errDoQID = errors.New("DoQ reply with a non-zero message ID")

// doqErr classifies a stream's failure: a reset by the server fails the query
// (kind reset), anything else (the connection going away) the session.
func doqErr(err error) error {
	var se *quic.StreamError
	if errors.As(err, &se) && se.Remote {
		return &queryError{kind: kindReset, err: fmt.Errorf("DoQ stream reset by the server, code %#x", uint64(se.ErrorCode))}
	}
	return err
}
