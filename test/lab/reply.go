package lab

import (
	"time"

	"github.com/miekg/dns"
)

// plan is what the lab decided for one query when it was read.
type plan struct {
	fault FaultKind // None unless a per-query fault hit
	delay time.Duration
}

// draw decides the fault and delay of one query.
func (u *Upstream) draw() plan {
	l, f, _ := u.current()
	p := plan{delay: l.sample(u.rnd)}
	if f.Kind != None && f.Kind != IdleClose && u.rnd.chance(f.Prob) {
		p.fault = f.Kind
		u.stats.faults.Add(1)
	}
	return p
}

// wait sleeps d unless stop or done closes first; it reports whether d elapsed.
func wait(d time.Duration, stop, done <-chan struct{}) bool {
	if d <= 0 {
		select {
		case <-stop:
			return false
		case <-done:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	case <-done:
		return false
	}
}

// reply builds the wire reply to req for transport ("udp", "tcp", "tls", "unix") under fault.
func (u *Upstream) reply(req *dns.Msg, fault FaultKind, transport string) []byte {
	if fault == Garbage {
		return u.garbage()
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	switch {
	case req.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
	case len(req.Question) != 1:
		m.SetRcodeFormatError(req)
	case fault == ServFail:
		m.Rcode = dns.RcodeServerFailure
	case fault == Refused:
		m.Rcode = dns.RcodeRefused
	case fault == WrongQuestion:
		m.Question[0].Name = wrongName(req.Question[0].Name)
		u.zone.answer(m, m.Question[0].Name, req.Question[0].Qtype)
	case req.Question[0].Qclass != dns.ClassINET:
		m.Rcode = dns.RcodeRefused
	default:
		// m.Question is req's, so the reply keeps the query's 0x20 case.
		u.zone.answer(m, req.Question[0].Name, req.Question[0].Qtype)
	}
	if fault == WrongID {
		m.Id = req.Id + 1
	}
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), dns.MinMsgSize)
		m.Extra = append(m.Extra, u.opt(opt, transport))
	}
	if transport == "udp" {
		m.Truncate(size) // sets TC when the answer does not fit (RFC 1035 §4.2.1)
	}
	out, err := m.Pack()
	if err != nil {
		m = new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		out, _ = m.Pack()
	}
	return out
}

// opt echoes the query's EDNS0: its UDP size and DO bit, and on streams the
// edns-tcp-keepalive option when the query carried it (RFC 7828 §3.2.2: never over UDP).
func (u *Upstream) opt(q *dns.OPT, transport string) *dns.OPT {
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(max(q.UDPSize(), dns.MinMsgSize))
	o.SetDo(q.Do())
	if transport == "udp" {
		return o
	}
	for _, e := range q.Option {
		if e.Option() == dns.EDNS0TCPKEEPALIVE {
			t := max(u.idle/(100*time.Millisecond), 1)
			o.Option = append(o.Option, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE, Timeout: uint16(min(t, 0xffff))})
		}
	}
	return o
}

// wrongName returns a name other than qname, for WrongQuestion.
func wrongName(qname string) string {
	if len(qname) < 240 {
		return "wrong." + qname
	}
	return "wrong.lab.test."
}

// garbage returns bytes no DNS parser accepts: a random header announcing questions, then a
// label that claims 63 bytes and is cut short.
func (u *Upstream) garbage() []byte {
	b := make([]byte, 12+1+8+u.rnd.intn(32))
	u.rnd.read(b)
	b[4], b[5] = 0, 1+b[5]%8 // QDCOUNT ≥ 1
	b[12] = 63
	return b
}
