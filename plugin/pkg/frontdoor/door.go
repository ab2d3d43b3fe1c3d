package frontdoor

import (
	"context"
	"encoding/binary"
	"net"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Answerer is the cache a front door answers hits from (warmcache).
type Answerer interface {
	// Answer appends to dst the reply to the packed query msg, which wire.ParseQuery has
	// parsed into q, at now (the cache's clock, Unix nanoseconds), and returns it with its
	// rcode; false when the query must go to the server. It counts nothing.
	Answer(msg []byte, q wire.Query, udp bool, dst []byte, now int64) ([]byte, int, bool)
	// Now is the cache's clock.
	Now() time.Time
	// HitsCounter is the cache's counter of hits answered for server.
	HitsCounter(server string) prometheus.Counter
}

// Door is what a group's sockets answer with: the cache for hits, the block's server for
// the rest, and the metrics the skipped plugins would have counted.
type Door struct {
	Cache  Answerer
	Server *dnsserver.Server
	// Label is the server label of the block's metrics ("dns://:53").
	Label string
	// Report reproduces the prometheus plugin's series for hits; nil without prometheus.
	Report *Reporter
	// Rotate reorders hits as loadbalance's round_robin does (Rotate).
	Rotate bool

	hits, passed, cacheHits prometheus.Counter
	inflight                atomic.Int64 // misses being answered through Server
}

// counters resolves d's own counters once.
func (d *Door) counters() {
	if d.hits == nil {
		d.hits, d.passed = hitsCount.WithLabelValues(d.Label), passedCount.WithLabelValues(d.Label)
		d.cacheHits = d.Cache.HitsCounter(d.Label)
	}
}

// batch is what one reader counts of a batch of datagrams before it sends the replies.
type batch struct {
	start time.Time // when the batch was read
	now   int64     // the cache's clock then
	hits  int
	tally tally
}

// hit renders the reply to b from the cache into dst, and adds it to t.
func (d *Door) hit(b []byte, fam int, dst []byte, t *batch) ([]byte, bool) {
	q, err := wire.ParseQuery(b)
	if err != nil {
		return nil, false
	}
	reply, rcode, ok := d.Cache.Answer(b, q, true, dst, t.now)
	if !ok || (d.Rotate && !Rotate(reply)) {
		return nil, false
	}
	if d.Report != nil {
		t.tally.add(d.Report, &q, b, fam, len(reply), rcode)
	}
	t.hits++
	return reply, true
}

// count counts the hits of t, before their replies are sent, and empties it.
func (d *Door) count(t *batch) {
	if t.hits == 0 {
		return
	}
	if d.Report != nil {
		t.tally.flush(time.Since(t.start).Seconds())
	}
	d.hits.Add(float64(t.hits))
	d.cacheHits.Add(float64(t.hits))
	t.hits = 0
}

// miss answers b as CoreDNS's UDP server would, in a goroutine of its own, and calls done
// when it has.
func (d *Door) miss(c *net.UDPConn, b []byte, addr *net.UDPAddr, oob []byte, done func()) {
	d.passed.Inc()
	w := &writer{conn: c, addr: addr, oob: oob}
	go func() {
		defer done()
		d.serve(w, b)
	}()
}

// serve is miekg/dns's Server.serveDNS followed by CoreDNS's UDP handler: a datagram
// shorter than a header is dropped; the header decides (dns.DefaultMsgAcceptFunc) between
// serving, FORMERR, NOTIMP and silence; a message that does not unpack gets FORMERR.
func (d *Door) serve(w *writer, b []byte) {
	if len(b) < 12 {
		return
	}
	dh := dns.Header{
		Id: binary.BigEndian.Uint16(b), Bits: binary.BigEndian.Uint16(b[2:]),
		Qdcount: binary.BigEndian.Uint16(b[4:]), Ancount: binary.BigEndian.Uint16(b[6:]),
		Nscount: binary.BigEndian.Uint16(b[8:]), Arcount: binary.BigEndian.Uint16(b[10:]),
	}
	req := new(dns.Msg)
	action := dns.DefaultMsgAcceptFunc(dh)
	if action == dns.MsgAccept {
		if err := req.Unpack(b); err == nil {
			ctx := context.WithValue(context.Background(), dnsserver.Key{}, d.Server)
			ctx = context.WithValue(ctx, dnsserver.LoopKey{}, 0)
			d.Server.ServeDNS(ctx, w, req)
			return
		}
		action = dns.MsgReject
	} else {
		setHdr(req, dh)
	}
	if action == dns.MsgIgnore {
		return
	}
	opcode := req.Opcode
	req.SetRcodeFormatError(req)
	req.Zero = false
	if action == dns.MsgRejectNotImplemented {
		req.Opcode = opcode
		req.Rcode = dns.RcodeNotImplemented
	}
	req.Ns, req.Answer, req.Extra = nil, nil, nil
	w.WriteMsg(req)
}

// setHdr is miekg/dns's Msg.setHdr.
func setHdr(m *dns.Msg, dh dns.Header) {
	m.Id = dh.Id
	m.Response = dh.Bits&(1<<15) != 0
	m.Opcode = int(dh.Bits>>11) & 0xF
	m.Authoritative = dh.Bits&(1<<10) != 0
	m.Truncated = dh.Bits&(1<<9) != 0
	m.RecursionDesired = dh.Bits&(1<<8) != 0
	m.RecursionAvailable = dh.Bits&(1<<7) != 0
	m.Zero = dh.Bits&(1<<6) != 0
	m.AuthenticatedData = dh.Bits&(1<<5) != 0
	m.CheckingDisabled = dh.Bits&(1<<4) != 0
	m.Rcode = int(dh.Bits & 0xF)
}

// writer is the dns.ResponseWriter of one query that missed: a UDP reply on the socket it
// came in on, from the address it came to.
type writer struct {
	conn *net.UDPConn
	addr *net.UDPAddr
	oob  []byte
}

func (w *writer) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *writer) RemoteAddr() net.Addr { return w.addr }

func (w *writer) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *writer) Write(b []byte) (int, error) {
	n, _, err := w.conn.WriteMsgUDP(b, w.oob, w.addr)
	return n, err
}

func (w *writer) Close() error        { return nil }
func (w *writer) TsigStatus() error   { return nil }
func (w *writer) TsigTimersOnly(bool) {}
func (w *writer) Hijack()             {}
