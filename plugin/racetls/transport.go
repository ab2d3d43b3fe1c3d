package racetls

import (
	"context"
	"errors"
	"net"
)

// A transport reaches one upstream: tls:// (RFC 7858), quic:// (RFC 9250), https://
// (RFC 8484) or dns:// (RFC 1035 over UDP, or TCP). Everything else (pipelining and
// message IDs, reconnects, keepalive probes, half-open detection, racing and stats)
// lives once, in conn and upstream, above this interface.
type transport interface {
	// scheme is the upstream's scheme: "tls", "quic", "https" or "dns".
	scheme() string
	// datagram reports whether the transport runs over UDP (for dnstap's addresses).
	datagram() bool
	// stream reports whether sessions are one TCP or TLS byte stream, where RFC 7828's
	// edns-tcp-keepalive applies. DoQ forbids the option (RFC 9250 §5.5.2), UDP too.
	stream() bool
	// dial opens one session: a connection, or for plain UDP a set of sockets.
	dial(ctx context.Context) (session, error)
}

// A session is one connection of a transport, driven by a conn: the conn's writer
// goroutine hands it batches of queries, its reader goroutine takes the replies.
type session interface {
	// send writes a batch of queries, each a 2-byte length and a message whose ID is
	// the conn's. An error ends the session.
	send(batch []byte) error
	// recv returns the next reply, or a query's own failure. An error ends the session.
	recv() (reply, error)
	// close ends the session and makes send and recv return.
	close() error
	// handshake describes how the session was set up.
	handshake() handshake
	// localAddr is this end of the session, dnstap's query address; nil when unknown.
	localAddr() net.Addr
}

// reply is a session's answer to one query.
type reply struct {
	msg []byte // the reply, carrying the query's (conn's) ID; nil when err is set
	id  uint16 // the query's ID, when err is set
	err error  // this query failed (an HTTP error, a stream reset): the session lives on
}

// handshake is what a session's setup cost: a TLS handshake, full or resumed, and
// whether the first queries went out as 0-RTT early data.
type handshake struct {
	tls, resumed, early bool
}

// queryError is one query's failure on a session that lives on, with the kind it counts as.
type queryError struct {
	kind string
	err  error
}

func (e *queryError) Error() string { return e.err.Error() }
func (e *queryError) Unwrap() error { return e.err }

// kindOf returns the errors_total kind of a query's failure.
func kindOf(err error) string {
	var qe *queryError
	if errors.As(err, &qe) {
		return qe.kind
	}
	return kindConn
}
