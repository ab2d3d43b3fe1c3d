package warmcache

import (
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Hit answers the packed query msg from the cache without unpacking it, for a listener that
// sees queries before the server does (the front door, DESIGN §6.3). It appends the reply
// to dst and returns it with its rcode, or false when the query must go to the server: it
// is not a plain IN query (wire.ParseQuery) with a name of plain bytes, it is not in the
// cache's zones, there is no fresh entry, or the reply must be truncated (udp, over the
// client's size). server is the label of the listener's metrics. The reply is the one
// ServeDNS gives through the rest of the server for the same query.
func (c *WarmCache) Hit(msg []byte, udp bool, dst []byte, server string) ([]byte, int, bool) {
	q, err := wire.ParseQuery(msg)
	if err != nil {
		return dst, 0, false
	}
	out, rcode, ok := c.Answer(msg, q, udp, dst, c.now().UnixNano())
	if ok {
		c.metrics.get(server).hits.Inc()
	}
	return out, rcode, ok
}

// Answer is Hit for a query that wire.ParseQuery has parsed into q, at now (Unix
// nanoseconds of Now), counting nothing: a listener that answers hits counts them in
// HitsCounter, a batch at a time.
func (c *WarmCache) Answer(msg []byte, q wire.Query, udp bool, dst []byte, now int64) ([]byte, int, bool) {
	if !q.Plain || q.Qclass != dns.ClassINET {
		return dst, 0, false
	}
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeDS: // transfers; DS is routed to the parent zone
		return dst, 0, false
	}
	var nb [256]byte
	name := q.AppendName(nb[:0], msg)
	if len(c.Zones) != 1 || c.Zones[0] != "." {
		if !c.inZones(string(name)) {
			return dst, 0, false
		}
	}
	h := hashKey(name, q.Qtype, q.Qclass, q.DO, q.CD)
	limit := 0
	if udp {
		limit = udpLimit(q.UDPSize, 0)
	}
	qwire := msg[wire.HeaderLen:q.QNameEnd]
	// Expired entries are not answered here: stale answers and refreshes are the chain's.
	p := probe{qwire: qwire, qtype: q.Qtype, qclass: q.Qclass, do: q.DO, cd: q.CD, now: now,
		raw: rawAlways, limit: limit, rt: replyTo{id: q.ID, rd: q.RD, cd: q.CD, ad: q.AD, edns: q.EDNS, do: q.DO,
			size: q.UDPSize, flagsHi: q.FlagsHi, qwire: qwire}}
	out := c.store.lookup(h, &p, dst)
	if !p.rendered {
		return dst, 0, false
	}
	return out, p.rcode, true
}

// Now is the cache's clock.
func (c *WarmCache) Now() time.Time { return c.now() }

// HitsCounter returns the counter of hits answered for server (warmcache_hits_total).
func (c *WarmCache) HitsCounter(server string) prometheus.Counter { return c.metrics.get(server).hits }
