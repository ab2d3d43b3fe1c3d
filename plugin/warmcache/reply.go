package warmcache

import (
	"encoding/binary"

	"github.com/coredns/coredns/plugin/pkg/edns"
	"github.com/coredns/coredns/request"
	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/miekg/dns"
)

// optLen is the length of the OPT RR the hit path appends: root name, type, class
// (UDP size), TTL (extended RCODE, version, flags) and an empty RDATA (RFC 6891 §6.1.2).
const optLen = 11

// Header flag bits in bytes 2 and 3 (RFC 1035 §4.1.1, RFC 4035 §3.2).
const (
	flagTC = 0x02 // byte 2
	flagRD = 0x01 // byte 2
	flagAD = 0x20 // byte 3
	flagCD = 0x10 // byte 3
)

// render returns e as a reply to r with every TTL set to ttl. opt is r's OPT record
// or nil, limit the largest reply the client accepts (0 for no limit).
func (e *entry) render(r *dns.Msg, opt *dns.OPT, ttl uint32, limit int) []byte {
	n, extra := len(e.msg), 0
	if opt != nil {
		extra = optLen
	}
	buf := make([]byte, n, n+extra)
	copy(buf, e.msg)
	binary.BigEndian.PutUint16(buf, r.Id)

	// RD and CD are copied from the request (RFC 1035 §4.1.1, RFC 4035 §3.2.2). AD is kept
	// only when the client asked for it with DO or AD (RFC 6840 §5.7, §5.8), as cache does.
	buf[2] &^= flagRD
	if r.RecursionDesired {
		buf[2] |= flagRD
	}
	buf[3] &^= flagAD | flagCD
	if e.ad && (e.key.do || r.AuthenticatedData) {
		buf[3] |= flagAD
	}
	if r.CheckingDisabled {
		buf[3] |= flagCD
	}
	wire.CopyCase(buf, wire.HeaderLen, r.Question[0].Name)
	wire.PatchTTLs(buf, e.ttls, ttl)

	if limit > 0 && n+extra > limit {
		// Too large for the client's UDP buffer: send the question with TC set and no
		// records, so that the client retries over TCP (RFC 1035 §4.2.1, RFC 2181 §9).
		buf = buf[:e.qEnd]
		buf[2] |= flagTC
		clear(buf[6:12])
	}
	if opt != nil {
		var flags byte
		if opt.Do() {
			flags = 0x80
		}
		buf = append(buf, 0, 0, 41, udpSize>>8, udpSize&0xFF, 0, 0, flags, 0, 0, 0)
		arcount := binary.BigEndian.Uint16(buf[10:])
		binary.BigEndian.PutUint16(buf[10:], arcount+1)
	}
	return buf
}

// sizeLimit returns the largest reply the client of w accepts, 0 meaning no limit (TCP).
func sizeLimit(w dns.ResponseWriter, opt *dns.OPT) int {
	state := request.Request{W: w}
	proto := state.Proto()
	if proto == "tcp" {
		return 0
	}
	var size uint16
	if opt != nil {
		size = opt.UDPSize()
	}
	return int(edns.Size(proto, size))
}

// write sends e to the client as a reply to r with every TTL set to ttl, and makes the
// wrapping log and prometheus recorders see e's rcode.
func (c *WarmCache) write(w dns.ResponseWriter, r *dns.Msg, opt *dns.OPT, e *entry, ttl uint32) error {
	buf := e.render(r, opt, ttl, sizeLimit(w, opt))
	_, err := w.Write(buf)
	if err == nil {
		recordRcode(w, e)
	}
	return err
}
