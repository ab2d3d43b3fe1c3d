package lab

import (
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Stats is a snapshot of an upstream's counters since Start.
type Stats struct {
	Queries                                         int64 // parsed queries, all transports
	QueriesUDP, QueriesTCP, QueriesTLS, QueriesUnix int64
	QueriesHTTPS, QueriesQUIC                       int64 // DoH requests, DoQ streams
	Replies                                         int64 // messages written (garbage included)
	Faults                                          int64 // queries a fault hit (and IdleClose closes)
	Conns                                           int64 // stream connections accepted
	OpenConns                                       int64 // stream connections open now
	Handshakes                                      int64 // completed TLS handshakes, full and resumed
	Resumed                                         int64 // handshakes that resumed a session
	EarlyData                                       int64 // DoQ connections that used 0-RTT
}

type counters struct {
	queries, udp, tcp, tls, unix atomic.Int64
	https, quic, early           atomic.Int64
	replies, faults, conns, open atomic.Int64
	handshakes, resumed          atomic.Int64
}

// Stats returns the counters.
func (u *Upstream) Stats() Stats {
	c := &u.stats
	return Stats{
		Queries: c.queries.Load(), QueriesUDP: c.udp.Load(), QueriesTCP: c.tcp.Load(),
		QueriesTLS: c.tls.Load(), QueriesUnix: c.unix.Load(),
		Replies: c.replies.Load(), Faults: c.faults.Load(),
		Conns: c.conns.Load(), OpenConns: c.open.Load(),
		Handshakes: c.handshakes.Load(), Resumed: c.resumed.Load(),
		QueriesHTTPS: c.https.Load(), QueriesQUIC: c.quic.Load(), EarlyData: c.early.Load(),
	}
}

// Count returns how many queries (any type, any transport) named qname; case and the final
// dot do not matter.
func (u *Upstream) Count(qname string) int64 {
	u.countMu.Lock()
	defer u.countMu.Unlock()
	return u.counts[dns.Fqdn(strings.ToLower(qname))]
}

// seen counts one parsed query.
func (u *Upstream) seen(m *dns.Msg, transport string) {
	u.stats.queries.Add(1)
	switch transport {
	case "udp":
		u.stats.udp.Add(1)
	case "tcp":
		u.stats.tcp.Add(1)
	case "tls":
		u.stats.tls.Add(1)
	case "unix":
		u.stats.unix.Add(1)
	case "https":
		u.stats.https.Add(1)
	case "quic":
		u.stats.quic.Add(1)
	}
	if len(m.Question) > 0 {
		u.countMu.Lock()
		u.counts[strings.ToLower(m.Question[0].Name)]++
		u.countMu.Unlock()
	}
}
