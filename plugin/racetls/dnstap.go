package racetls

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/coredns/coredns/plugin/dnstap"
	"github.com/coredns/coredns/plugin/dnstap/msg"
	"github.com/coredns/coredns/request"

	tap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
)

// setTaps adopts the block's dnstap plugins, as forward does at startup.
func (rt *RaceTLS) setTaps(t *dnstap.Dnstap) {
	for t != nil {
		rt.tapPlugins = append(rt.tapPlugins, t)
		t, _ = t.Next.(*dnstap.Dnstap)
	}
}

func (rt *RaceTLS) taps() []*dnstap.Dnstap { return rt.tapPlugins }

// tapAddr is the upstream's address as dnstap records it: TCP for stream
// transports, UDP for datagram ones (DoQ runs over UDP).
func tapAddr(u *upstream) net.Addr {
	ap, err := netip.ParseAddrPort(u.addr)
	if err != nil {
		return nil
	}
	ip, port := net.IP(ap.Addr().AsSlice()), int(ap.Port())
	if u.datagram() {
		return &net.UDPAddr{IP: ip, Port: port}
	}
	return &net.TCPAddr{IP: ip, Port: port}
}

// tapQuery sends a FORWARDER_QUERY message for the query q asked of u, as
// forward's toDnstap does for each upstream it tries: the query address is this end
// of the upstream connection (local, nil when the query waits for a connection), the
// response address the upstream's.
func tapQuery(ctx context.Context, taps []*dnstap.Dnstap, u *upstream, local net.Addr, w dns.ResponseWriter, r *dns.Msg, q []byte, start time.Time) {
	state := request.Request{W: w, Req: r}
	ta := tapAddr(u)
	for _, t := range taps {
		m := new(tap.Message)
		msg.SetQueryTime(m, start)
		if local != nil {
			msg.SetQueryAddress(m, local)
		}
		if ta != nil {
			msg.SetResponseAddress(m, ta)
		}
		if t.IncludeRawMessage {
			m.QueryMessage = q
		}
		msg.SetType(m, tap.Message_FORWARDER_QUERY)
		t.TapMessageWithMetadata(ctx, m, state)
	}
}

// tapReply sends a FORWARDER_RESPONSE message for the reply r of u, read during
// the race (winners and losers; late replies have no request left to tap for).
func tapReply(ctx context.Context, taps []*dnstap.Dnstap, u *upstream, local net.Addr, w dns.ResponseWriter, req *dns.Msg, r []byte, start time.Time) {
	state := request.Request{W: w, Req: req}
	ta := tapAddr(u)
	for _, t := range taps {
		m := new(tap.Message)
		msg.SetQueryTime(m, start)
		msg.SetResponseTime(m, time.Now())
		if local != nil {
			msg.SetQueryAddress(m, local)
		}
		if ta != nil {
			msg.SetResponseAddress(m, ta)
		}
		if t.IncludeRawMessage {
			m.ResponseMessage = r
		}
		msg.SetType(m, tap.Message_FORWARDER_RESPONSE)
		t.TapMessageWithMetadata(ctx, m, state)
	}
}
