package racetls

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
)

// udpTransport is plain DNS (RFC 1035 §4.2.1) over UDP: each query gets its own
// connected socket, so a fresh random source port, and a fresh random message ID; only
// a reply from the upstream's address (the kernel filters a connected socket), with that
// ID and the query's question is taken. A truncated reply is retried over TCP (RFC 7766
// §5). A session is a budget of in-flight queries, not a connection.
type udpTransport struct {
	addr    string
	timeout time.Duration
}

func (t *udpTransport) scheme() string { return "dns" }
func (t *udpTransport) datagram() bool { return true }
func (t *udpTransport) stream() bool   { return false }

func (t *udpTransport) dial(context.Context) (session, error) {
	return newMsgSession(&msgSession{exchange: t.exchange, local: t.source()}), nil
}

// source returns the address the kernel sends from to the upstream, port 0: each query
// has a socket (and port) of its own, not known when dnstap records the query.
func (t *udpTransport) source() net.Addr {
	c, err := net.Dial("udp", t.addr) // connect(2) on UDP picks the source; nothing is sent
	if err != nil {
		return nil
	}
	defer c.Close()
	a, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil
	}
	return &net.UDPAddr{IP: a.IP}
}

// udpRetry is how long a UDP query waits for its reply before it is sent again.
const udpRetry = 250 * time.Millisecond

// errTruncatedTCP is a TC reply whose TCP retry failed too.
var errTruncatedTCP = errors.New("truncated over UDP and no reply over TCP")

func (t *udpTransport) exchange(ctx context.Context, q []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	id := binary.BigEndian.Uint16(q)
	// The conn's IDs are sequential; on UDP the ID is half of the defence against
	// spoofed replies (RFC 5452 §9.2), so each query gets a random one on the wire.
	wireID := uint16(rand.Uint32()) // #nosec G404 -- math/rand/v2 is ChaCha8-seeded from the OS.
	out := append([]byte(nil), q...)
	binary.BigEndian.PutUint16(out, wireID)

	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", t.addr)
	if err != nil {
		return nil, &queryError{kind: kindConn, err: err}
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write(out); err != nil {
		return nil, &queryError{kind: kindConn, err: err}
	}
	buf := make([]byte, 65535)
	// A datagram can be lost: send it again, on the same socket and with the same ID, when no
	// reply came within rto, doubling rto, until the deadline (as forward retries a UDP
	// upstream within its deadline, and stub resolvers do).
	rto := udpRetry
	for {
		if ctx.Err() == nil {
			dl := time.Now().Add(rto)
			if end, ok := ctx.Deadline(); ok && end.Before(dl) {
				dl = end
			}
			c.SetReadDeadline(dl)
		}
		n, err := c.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
				if _, err := c.Write(out); err != nil {
					return nil, &queryError{kind: kindConn, err: err}
				}
				rto *= 2
				continue
			}
			return nil, &queryError{kind: kindTimeout, err: err}
		}
		r := buf[:n]
		// A reply with another ID or question is not ours (spoofed, or late from an
		// earlier query): keep waiting for the real one (RFC 5452 §4.3). One with no
		// question at all is the server's error reply (RFC 1035 lets it leave the question
		// out): the conn takes it as forward does, as a failure that never wins.
		if n < wire.HeaderLen || binary.BigEndian.Uint16(r) != wireID ||
			binary.BigEndian.Uint16(r[4:]) != 0 && !wire.SameQuestion(questionOf(q), r) {
			continue
		}
		if r[2]&0x02 != 0 { // TC
			return t.overTCP(ctx, out, id)
		}
		r = append([]byte(nil), r...)
		binary.BigEndian.PutUint16(r, id)
		return r, nil
	}
}

// overTCP retries a truncated query over a one-off TCP connection.
func (t *udpTransport) overTCP(ctx context.Context, out []byte, id uint16) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, &queryError{kind: kindConn, err: errTruncatedTCP}
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if err := wire.WriteFrame(c, out); err != nil {
		return nil, &queryError{kind: kindConn, err: errTruncatedTCP}
	}
	wireID := binary.BigEndian.Uint16(out)
	for {
		r, err := wire.ReadFrame(c, nil)
		if err != nil {
			return nil, &queryError{kind: kindConn, err: errTruncatedTCP}
		}
		if len(r) < wire.HeaderLen || binary.BigEndian.Uint16(r) != wireID {
			continue
		}
		binary.BigEndian.PutUint16(r, id)
		return r, nil
	}
}

// questionOf returns the question bytes of the packed query q.
func questionOf(q []byte) []byte {
	n, err := wire.QuestionLen(q)
	if err != nil {
		return nil
	}
	return q[wire.HeaderLen : wire.HeaderLen+n]
}
