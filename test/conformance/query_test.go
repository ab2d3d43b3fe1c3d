package conformance

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
)

// query is one request as the client sends it.
type query struct {
	name          string // presentation format, with the case to send
	qtype, qclass uint16
	rd, cd, ad    bool
	tcp           bool
	edns          bool // add an OPT record
	size          uint16
	do            bool
	version       uint8
	opts          []dns.EDNS0
	mangle        func(m *dns.Msg) // last changes before packing (extra OPTs, OPT in the wrong section)
}

// ask returns a query for name/qtype in class IN with RD and EDNS (1232, no DO), as a stub
// resolver sends it.
func ask(name string, qtype uint16) query {
	return query{name: name, qtype: qtype, qclass: dns.ClassINET, rd: true, edns: true, size: 1232}
}

func (q query) msg(id uint16) *dns.Msg {
	m := new(dns.Msg)
	m.Id = id
	m.Opcode = dns.OpcodeQuery
	m.RecursionDesired = q.rd
	m.CheckingDisabled = q.cd
	m.AuthenticatedData = q.ad
	m.Question = []dns.Question{{Name: q.name, Qtype: q.qtype, Qclass: q.qclass}}
	if q.edns {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(q.size)
		o.SetVersion(q.version)
		if q.do {
			o.SetDo()
		}
		o.Option = q.opts
		m.Extra = append(m.Extra, o)
	}
	if q.mangle != nil {
		q.mangle(m)
	}
	return m
}

// pack returns the query's wire form and its question section's bytes.
func (q query) pack(id uint16) ([]byte, []byte, error) {
	b, err := q.msg(id).Pack()
	if err != nil {
		return nil, nil, err
	}
	end, err := questionEnd(b)
	if err != nil {
		return nil, nil, err
	}
	return b, b[12:end], nil
}

// questionEnd returns the offset past the first question of a packed message whose question
// name is not compressed.
func questionEnd(b []byte) (int, error) {
	if len(b) < 12 || binary.BigEndian.Uint16(b[4:]) == 0 {
		return 0, errors.New("no question")
	}
	off := 12
	for {
		if off >= len(b) {
			return 0, errors.New("short")
		}
		l := int(b[off])
		if l == 0 {
			off++
			break
		}
		if l&0xC0 != 0 {
			return 0, errors.New("compressed question name")
		}
		off += 1 + l
	}
	if off+4 > len(b) {
		return 0, errors.New("short")
	}
	return off + 4, nil
}

// exchange sends q to addr over UDP or TCP and returns the reply's bytes.
func exchange(addr string, q query, id uint16) (reply, qbytes []byte, err error) {
	b, qb, err := q.pack(id)
	if err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(1500 * time.Millisecond) // a silent drop costs this much
	if !q.tcp {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return nil, qb, err
		}
		defer c.Close()
		c.SetDeadline(deadline)
		if _, err := c.Write(b); err != nil {
			return nil, qb, err
		}
		buf := make([]byte, 65535)
		stray := 0
		for {
			n, err := c.Read(buf)
			if err != nil {
				if stray > 0 {
					err = fmt.Errorf("%w after %d replies with another ID", err, stray)
				}
				return nil, qb, err
			}
			if n >= 2 && binary.BigEndian.Uint16(buf) == id {
				return buf[:n], qb, nil
			}
			stray++ // another ID on this socket: not our reply; keep waiting, and say so on a timeout
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, qb, err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if err := wire.WriteFrame(c, b); err != nil {
		return nil, qb, err
	}
	buf, err := wire.ReadFrame(c, nil)
	return buf, qb, err
}

// result is a reply reduced to what the suite compares. Each field is a string so that a
// difference prints as it is.
type result map[string]string

// Fields compared, in report order.
var fields = []string{"error", "flags", "rcode", "opt", "opt.size", "opt.do", "opt.options",
	"question", "answer", "authority", "additional", "ttl0"}

// reduce turns a reply into a result: header flags; RCODE (extended, with OPT); OPT presence,
// version, UDP size, DO and option codes; whether the question section comes back byte for
// byte as sent; the three sections as sets of records with TTLs and owner-name case
// normalised; and which records carry TTL 0 (the special case: a cache may serve them so).
func reduce(wire, qbytes []byte, err error) result {
	r := result{}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r["error"] = "timeout"
			if strings.Contains(err.Error(), "another ID") {
				r["error"] = "timeout, replies with another ID"
			}
		} else {
			r["error"] = "error"
		}
		return r
	}
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		r["error"] = "unparsable: " + err.Error()
		return r
	}
	var f []string
	for _, b := range []struct {
		on   bool
		name string
	}{{m.Response, "qr"}, {m.Authoritative, "aa"}, {m.Truncated, "tc"}, {m.RecursionDesired, "rd"},
		{m.RecursionAvailable, "ra"}, {m.AuthenticatedData, "ad"}, {m.CheckingDisabled, "cd"}, {m.Zero, "z"}} {
		if b.on {
			f = append(f, b.name)
		}
	}
	if m.Opcode != dns.OpcodeQuery {
		f = append(f, "opcode="+dns.OpcodeToString[m.Opcode])
	}
	r["flags"] = strings.Join(f, " ")
	r["rcode"] = rcodeName(m.Rcode)

	r["question"] = questionOf(wire, qbytes)

	var opts []*dns.OPT
	for _, rr := range m.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			opts = append(opts, o)
		}
	}
	switch len(opts) {
	case 0:
		r["opt"] = "none"
	case 1:
		o := opts[0]
		r["opt"] = fmt.Sprintf("v%d", o.Version())
		r["opt.size"] = fmt.Sprint(o.UDPSize())
		r["opt.do"] = fmt.Sprint(o.Do())
		var codes []string
		for _, e := range o.Option {
			codes = append(codes, edns0Name(e.Option()))
		}
		sort.Strings(codes)
		r["opt.options"] = strings.Join(codes, " ")
	default:
		r["opt"] = fmt.Sprintf("%d OPT records", len(opts))
	}
	var zero []string
	for _, s := range []struct {
		name string
		rrs  []dns.RR
	}{{"answer", m.Answer}, {"authority", m.Ns}, {"additional", m.Extra}} {
		var set []string
		for _, rr := range s.rrs {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			set = append(set, normal(rr))
			if rr.Header().Ttl == 0 {
				zero = append(zero, s.name+": "+normal(rr))
			}
		}
		sort.Strings(set)
		r[s.name] = strings.Join(set, "\n")
	}
	sort.Strings(zero)
	r["ttl0"] = strings.Join(zero, "\n")
	return r
}

// questionOf says how the reply's question section compares with the query's bytes.
func questionOf(wire, qbytes []byte) string {
	qd := binary.BigEndian.Uint16(wire[4:])
	if qd == 0 {
		return "none"
	}
	end, err := questionEnd(wire)
	if err != nil {
		return "bad: " + err.Error()
	}
	got := wire[12:end]
	if qd != 1 {
		return fmt.Sprintf("%d questions", qd)
	}
	if bytes.Equal(got, qbytes) {
		return "as sent"
	}
	name, _, err := dns.UnpackDomainName(wire, 12)
	if err != nil {
		name = "?"
	}
	if bytes.EqualFold(got, qbytes) {
		return "case differs: " + name
	}
	return "differs: " + name
}

// normal prints rr with TTL 0 and, but for TXT, in lower case: owner names, and names in
// RDATA that a compression pointer may give the question's case, compare case-insensitively
// (RFC 4343).
func normal(rr dns.RR) string {
	rr = dns.Copy(rr)
	rr.Header().Ttl = 0
	if rr.Header().Rrtype == dns.TypeTXT {
		rr.Header().Name = asciiLower(rr.Header().Name)
		return rr.String()
	}
	return asciiLower(rr.String())
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprint(rc)
}

func edns0Name(code uint16) string {
	switch code {
	case dns.EDNS0NSID:
		return "NSID"
	case dns.EDNS0COOKIE:
		return "COOKIE"
	case dns.EDNS0SUBNET:
		return "ECS"
	case dns.EDNS0EDE:
		return "EDE"
	case dns.EDNS0TCPKEEPALIVE:
		return "KEEPALIVE"
	case dns.EDNS0PADDING:
		return "PADDING"
	}
	return fmt.Sprint(code)
}

// diff returns the fields in which a and b differ.
func diff(a, b result) []string {
	if a["error"] != b["error"] {
		return []string{"error"} // the rest follows from it
	}
	var out []string
	for _, f := range fields {
		if a[f] != b[f] {
			out = append(out, f)
		}
	}
	return out
}

// with0x20 returns name with the case of every ASCII letter drawn at random (the 0x20 bit,
// draft-vixie-dnsext-dns0x20), escapes untouched.
func with0x20(rnd *rand.Rand, name string) string {
	b := []byte(name)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' { // skip the escaped byte or \DDD
			if i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '9' {
				i += 3
			} else {
				i++
			}
			continue
		}
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') {
			if rnd.IntN(2) == 0 {
				b[i] = c | 0x20
			} else {
				b[i] = c &^ 0x20
			}
		}
	}
	return string(b)
}

// flipCase returns name with every ASCII letter's case inverted, so that it differs from
// name in every letter.
func flipCase(name string) string {
	b := []byte(name)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' {
			if i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '9' {
				i += 3
			} else {
				i++
			}
			continue
		}
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') {
			b[i] = c ^ 0x20
		}
	}
	return string(b)
}

// describe prints a query for reports.
func (q query) String() string {
	var p []string
	p = append(p, q.name, dns.Class(q.qclass).String(), dns.Type(q.qtype).String())
	if q.tcp {
		p = append(p, "tcp")
	} else {
		p = append(p, "udp")
	}
	for _, b := range []struct {
		on   bool
		name string
	}{{q.rd, "rd"}, {q.cd, "cd"}, {q.ad, "ad"}} {
		if b.on {
			p = append(p, b.name)
		}
	}
	if q.edns {
		e := fmt.Sprintf("edns(v%d size=%d", q.version, q.size)
		if q.do {
			e += " do"
		}
		for _, o := range q.opts {
			e += " " + edns0Name(o.Option())
		}
		p = append(p, e+")")
	} else {
		p = append(p, "no-edns")
	}
	if q.mangle != nil {
		p = append(p, "mangled")
	}
	return strings.Join(p, " ")
}
