package warmcache

import (
	"context"
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
	flagQR = 0x80 // byte 2
	flagAA = 0x04 // byte 2
	flagRD = 0x01 // byte 2
	flagRA = 0x80 // byte 3
	flagAD = 0x20 // byte 3
	flagCD = 0x10 // byte 3
)

// A hit is the reply cache would send: the request's ID, opcode, RD, CD and question
// (SetReply), the stored AA, RA and rcode, AD only for a client that asked for it with DO
// or AD (RFC 6840 §5.7, §5.8), every TTL set to what is left, and, for an EDNS client, the
// OPT record CoreDNS's ScrubWriter makes from the request's (request.SizeAndDo). render
// builds those bytes without unpacking anything; reply builds the same reply as a *dns.Msg
// for the chains that need one.

// replyTo is what a reply takes from its request.
type replyTo struct {
	id             uint16
	opcode         int
	rd, cd, ad     bool
	edns, do       bool
	size           uint16 // the request's OPT UDP size
	flagsHi        byte   // the upper byte of the request's OPT flags (DO and Z bits)
	qwire          []byte // the question name as the client sent it, or nil: see qname
	qname          string // the question name in presentation format
	hasOptionsEDNS bool   // the request's OPT carries options
}

// newReplyTo returns what a reply to r, whose OPT is opt, takes from it.
func newReplyTo(r *dns.Msg, opt *dns.OPT) replyTo {
	rt := replyTo{id: r.Id, opcode: r.Opcode, rd: r.RecursionDesired, cd: r.CheckingDisabled,
		ad: r.AuthenticatedData, qname: r.Question[0].Name}
	if opt != nil {
		rt.edns, rt.do, rt.size, rt.flagsHi = true, opt.Do(), opt.UDPSize(), byte(opt.Hdr.Ttl>>8)
		rt.hasOptionsEDNS = len(opt.Option) > 0
	}
	return rt
}

// render returns e as a reply to r with every TTL set to ttl, or false when raw bytes
// can't be the exact reply: the request carries EDNS options (which SizeAndDo filters
// and echoes), or the reply does not fit limit, the largest reply the client accepts (0
// for no limit), so that it must be truncated as ScrubWriter truncates.
func (e *entry) render(r *dns.Msg, opt *dns.OPT, ttl uint32, limit int) ([]byte, bool) {
	rt := newReplyTo(r, opt)
	return e.renderTo(nil, &rt, ttl, limit)
}

// renderTo appends e as a reply to rt with every TTL set to ttl to dst; see render.
func (e *entry) renderTo(dst []byte, rt *replyTo, ttl uint32, limit int) ([]byte, bool) {
	return renderMsg(dst, e.msg, e.ttls, e.qEnd, e.ad, rt, ttl, limit)
}

// renderMsg appends the stored message msg, whose TTL offsets are ttls (two bytes each,
// little endian), question ends at qEnd and AD bit is ad, as a reply to rt with every TTL
// set to ttl to dst; see render. A hit renders straight from the store's slab.
func renderMsg(dst, msg, ttls []byte, qEnd int, ad bool, rt *replyTo, ttl uint32, limit int) ([]byte, bool) {
	n, extra := len(msg), 0
	if rt.edns {
		if rt.hasOptionsEDNS {
			return nil, false
		}
		extra = optLen
	}
	if limit > 0 && n+extra > limit {
		return nil, false
	}
	if dst == nil {
		dst = make([]byte, 0, n+extra)
	}
	start := len(dst)
	dst = append(dst, msg...)
	buf := dst[start:]
	binary.BigEndian.PutUint16(buf, rt.id)

	b2 := flagQR | byte(rt.opcode&0xF)<<3 | buf[2]&flagAA
	if rt.rd {
		b2 |= flagRD
	}
	b3 := buf[3] & (flagRA | 0x0F)
	if ad && (rt.do || rt.ad) {
		b3 |= flagAD
	}
	if rt.cd {
		b3 |= flagCD
	}
	buf[2], buf[3] = b2, b3

	// The question exactly as the client sent it, 0x20 case and escaped bytes included.
	switch {
	case rt.qwire != nil:
		if len(rt.qwire) != qEnd-4-wire.HeaderLen {
			return nil, false
		}
		copy(buf[wire.HeaderLen:], rt.qwire)
	case !wire.CopyCase(buf, wire.HeaderLen, rt.qname):
		end, err := dns.PackDomainName(rt.qname, buf, wire.HeaderLen, nil, false)
		if err != nil || end != qEnd-4 {
			return nil, false
		}
	}
	for i := 0; i+1 < len(ttls); i += 2 {
		binary.BigEndian.PutUint32(buf[binary.LittleEndian.Uint16(ttls[i:]):], ttl)
	}

	if rt.edns {
		// RFC 6891 §6.1.3: version 0 and no extended RCODE; the request's DO (and the rest
		// of its upper flag byte) kept, as SizeAndDo keeps them.
		dst = append(dst, 0, 0, 41, byte(rt.size>>8), byte(rt.size), 0, 0, rt.flagsHi, 0, 0, 0)
		buf = dst[start:]
		arcount := binary.BigEndian.Uint16(buf[10:])
		binary.BigEndian.PutUint16(buf[10:], arcount+1)
	}
	return dst, true
}

// adFor returns the AD bit of a reply to r from an entry whose stored AD bit is ad.
func adFor(ad bool, r *dns.Msg, opt *dns.OPT) bool {
	return ad && ((opt != nil && opt.Do()) || r.AuthenticatedData)
}

// reply returns e as a reply to r with every TTL set to ttl, for WriteMsg. The writer below
// adds the OPT record and truncates, as it does for cache.
func (e *entry) reply(r *dns.Msg, opt *dns.OPT, ttl uint32) (*dns.Msg, error) {
	return replyMsg(e.msg, e.ad, r, opt, ttl)
}

// replyMsg is reply for the stored message msg whose AD bit is ad.
func replyMsg(msg []byte, ad bool, r *dns.Msg, opt *dns.OPT, ttl uint32) (*dns.Msg, error) {
	m := new(dns.Msg)
	if err := m.Unpack(msg); err != nil {
		return nil, err
	}
	m.Id = r.Id
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.CheckingDisabled = r.CheckingDisabled
	m.AuthenticatedData = adFor(ad, r, opt)
	m.Zero = false
	m.Truncated = false
	m.Compress = false
	m.Question = []dns.Question{r.Question[0]}
	setTTLs(m, ttl)
	return m, nil
}

// setTTLs gives every record of m but OPT the TTL ttl.
func setTTLs(m *dns.Msg, ttl uint32) {
	for _, s := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range s {
			if rr.Header().Rrtype != dns.TypeOPT {
				rr.Header().Ttl = ttl
			}
		}
	}
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
	return udpLimit(size, state.Family())
}

// udpLimit is the largest reply to a UDP client with EDNS size size (0 without EDNS) that
// the server's ScrubWriter passes as it is: a larger one it truncates, and above 1480 bytes
// (IPv4) or 1220 (IPv6) it compresses (request.Scrub, after NSD), which the raw bytes, kept
// uncompressed as cache's replies are, can't be. family is 1 or 2, 0 when unknown (then
// IPv6's, the smaller).
func udpLimit(size uint16, family int) int {
	compressAt := 1220
	if family == 1 {
		compressAt = 1480
	}
	return min(int(edns.Size("udp", size)), compressAt)
}

// write sends e to the client as a reply to r with every TTL set to ttl: as raw bytes
// where the chain allows it, else through WriteMsg.
func (c *WarmCache) write(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, opt *dns.OPT, e *entry, ttl uint32) error {
	if c.rawFor(ctx, e.rcode, opt != nil) {
		if buf, ok := e.render(r, opt, ttl, sizeLimit(w, opt)); ok {
			_, err := w.Write(buf)
			return err
		}
	}
	m, err := e.reply(r, opt, ttl)
	if err != nil {
		return err
	}
	return w.WriteMsg(m)
}

// rawFor reports whether a hit on an entry with rcode for the request of ctx, which has
// EDNS if edns, may be written as raw bytes. Under a recorder (rawNoError) only NOERROR hits
// without EDNS may: the recorder takes the rcode from WriteMsg, and measures a WriteMsg reply
// before the server's writer adds the OPT record, where Write would count the OPT.
func (c *WarmCache) rawFor(ctx context.Context, rcode int, edns bool) bool {
	switch c.rawModeFor(ctx) {
	case rawAlways:
		return true
	case rawNoError:
		return rcode == dns.RcodeSuccess && !edns
	}
	return false
}

// rawModeFor returns the raw mode for the request of ctx, before the entry's rcode is known.
func (c *WarmCache) rawModeFor(ctx context.Context) rawMode {
	m := rawMode(c.mode.Load())
	if m == rawNever || reentered(ctx) {
		return rawNever
	}
	return m
}
