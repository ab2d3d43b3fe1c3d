package racetls

import (
	"encoding/binary"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/miekg/dns"
)

// probeQuery is the keepalive probe on TCP and TLS: ". IN NS" with an empty RFC
// 7828 edns-tcp-keepalive option, which asks the server for its idle timeout.
// Resolvers answer it from cache. probePlain is the probe without the option, for
// the transports where it is not allowed.
var (
	probeQuery, probeQlen = makeProbe(true)
	probePlain, _         = makeProbe(false)
)

func makeProbe(keepalive bool) ([]byte, int) {
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeNS)
	m.SetEdns0(1232, false)
	if keepalive {
		o := m.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE})
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	ql, err := wire.QuestionLen(b)
	if err != nil {
		panic(err)
	}
	return b, ql
}

// probe writes a keepalive probe on c.
func (c *conn) probe() {
	q := probeQuery
	if !c.u.tr.stream() {
		q = probePlain
	}
	buf := make([]byte, 2+len(q))
	binary.BigEndian.PutUint16(buf, uint16(len(q)))
	copy(buf[2:], q)
	c.send(&call{buf: buf, qlen: probeQlen, ctr: c.u.ctr, deadline: time.Now().Add(c.u.opts.timeout)})
}

// probeReply adopts the server's idle timeout (RFC 7828 §3.3.2): probe at
// half of it when that is sooner than keepalive.
func (c *conn) probeReply(m []byte) {
	r := new(dns.Msg)
	if r.Unpack(m) != nil {
		return
	}
	o := r.IsEdns0()
	if o == nil {
		return
	}
	for _, e := range o.Option {
		ka, ok := e.(*dns.EDNS0_TCP_KEEPALIVE)
		if !ok || ka.Timeout == 0 {
			continue
		}
		idle := time.Duration(ka.Timeout) * 100 * time.Millisecond / 2
		if idle < c.u.opts.tick {
			idle = c.u.opts.tick
		}
		if idle < time.Duration(c.idle.Load()) {
			c.idle.Store(int64(idle))
		}
	}
}
