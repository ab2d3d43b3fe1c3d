package frontdoor

import (
	"encoding/binary"

	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/miekg/dns"
)

// Rotate reorders the records of a packed NOERROR reply as the loadbalance plugin's
// round_robin policy reorders them in WriteMsg (plugin/loadbalance, randomShuffle): in
// each section, a set of only A or only AAAA records is shuffled; any other set is put in
// the order CNAME, other types, A and AAAA (shuffled), MX (shuffled). The shuffle is
// loadbalance's own, on dns.Id. An OPT record that ends the message is left last, where
// the server's writer puts it after loadbalance has run. It returns false, leaving msg
// as it was, for a message it can't walk or one with compression pointers (moving a
// record could break them; warmcache stores replies uncompressed).
func Rotate(msg []byte) bool {
	if len(msg) < wire.HeaderLen || msg[3]&0x0F != dns.RcodeSuccess {
		return true
	}
	q, err := wire.QuestionLen(msg)
	if err != nil {
		return false
	}
	off := wire.HeaderLen + q
	qtype := binary.BigEndian.Uint16(msg[off-4:])
	if qtype == dns.TypeAXFR || qtype == dns.TypeIXFR {
		return true
	}
	var counts [3]int
	for i := range counts {
		counts[i] = int(binary.BigEndian.Uint16(msg[6+2*i:]))
	}
	var recs [3][]rec
	for s, n := range counts {
		for range n {
			r, next, ok := walkRec(msg, off)
			if !ok {
				return false
			}
			recs[s] = append(recs[s], r)
			off = next
		}
	}
	if off != len(msg) {
		return false
	}
	if ex := recs[2]; len(ex) > 0 && ex[len(ex)-1].typ == dns.TypeOPT {
		recs[2] = ex[:len(ex)-1]
	}
	var scratch []byte
	for _, rs := range recs {
		if len(rs) < 2 {
			continue
		}
		order := roundRobin(rs)
		start, end := rs[0].start, rs[len(rs)-1].end
		scratch = scratch[:0]
		for _, r := range order {
			scratch = append(scratch, msg[r.start:r.end]...)
		}
		copy(msg[start:end], scratch)
	}
	return true
}

// rec is a record's place in a message and its type.
type rec struct {
	start, end int
	typ        uint16
}

// walkRec returns the record at off and the offset past it; false for a truncated record
// or a compressed owner name.
func walkRec(msg []byte, off int) (rec, int, bool) {
	end, err := wire.SkipName(msg, off)
	if err != nil || end+10 > len(msg) {
		return rec{}, 0, false
	}
	for i := off; i < end; {
		c := int(msg[i])
		if c&0xC0 != 0 {
			return rec{}, 0, false
		}
		if c == 0 {
			break
		}
		i += 1 + c
	}
	typ := binary.BigEndian.Uint16(msg[end:])
	next := end + 10 + int(binary.BigEndian.Uint16(msg[end+8:]))
	if next > len(msg) {
		return rec{}, 0, false
	}
	return rec{off, next, typ}, next, true
}

// roundRobin is loadbalance's roundRobin over record positions.
func roundRobin(in []rec) []rec {
	if len(in) <= 1 {
		return in
	}
	if t := in[0].typ; t == dns.TypeA || t == dns.TypeAAAA {
		all := true
		for _, r := range in[1:] {
			if r.typ != t {
				all = false
				break
			}
		}
		if all {
			out := append([]rec(nil), in...)
			shuffle(out)
			return out
		}
	}
	var cname, address, mx, rest []rec
	for _, r := range in {
		switch r.typ {
		case dns.TypeCNAME:
			cname = append(cname, r)
		case dns.TypeA, dns.TypeAAAA:
			address = append(address, r)
		case dns.TypeMX:
			mx = append(mx, r)
		default:
			rest = append(rest, r)
		}
	}
	shuffle(address)
	shuffle(mx)
	out := append(cname, rest...)
	out = append(out, address...)
	return append(out, mx...)
}

// shuffle is loadbalance's roundRobinShuffle.
func shuffle(records []rec) {
	switch l := len(records); l {
	case 0, 1:
	case 2:
		if dns.Id()%2 == 0 {
			records[0], records[1] = records[1], records[0]
		}
	default:
		for j := range l {
			p := j + (int(dns.Id()) % (l - j))
			if j == p {
				continue
			}
			records[j], records[p] = records[p], records[j]
		}
	}
}
