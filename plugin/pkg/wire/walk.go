// Package wire reads and patches packed DNS messages (RFC 1035 §4) in place,
// without unpacking them into dns.Msg values.
package wire

import (
	"encoding/binary"
	"errors"
)

// HeaderLen is the length of the fixed DNS message header (RFC 1035 §4.1.1).
const HeaderLen = 12

// Errors returned by Walk, SkipName and the framing helpers.
var (
	ErrShort   = errors.New("wire: message too short")
	ErrName    = errors.New("wire: bad domain name")
	ErrPointer = errors.New("wire: bad compression pointer")
	ErrCount   = errors.New("wire: unsupported question count")
	ErrTrail   = errors.New("wire: trailing bytes after last record")
	ErrOPT     = errors.New("wire: OPT record outside the additional section or repeated")
	// ErrZeroFrame is a length prefix of zero: there is no message, and the peer is not
	// speaking DNS.
	ErrZeroFrame = errors.New("wire: zero-length frame")
	// ErrFrameTooLong is a message longer than MaxFrame.
	ErrFrameTooLong = errors.New("wire: message longer than 65535 bytes")
)

// maxNameLen is the longest domain name on the wire (RFC 1035 §3.1).
const maxNameLen = 255

// Layout describes where things are in a packed message.
type Layout struct {
	// QEnd is the offset just past the question section.
	QEnd int
	// TTLs holds the offset of the TTL field of every resource record except OPT, in
	// message order. It is appended to the slice given to Walk.
	TTLs []uint16
}

// Walk checks the structure of msg, which must hold one question, and reports its
// layout. TTL offsets are appended to ttls. Compression pointers are never followed:
// a name that ends in a pointer ends there, and the pointer must point backwards to a
// location inside the header-less part of the message, so loops are impossible.
func Walk(msg []byte, ttls []uint16) (Layout, error) {
	l := Layout{TTLs: ttls}
	if len(msg) < HeaderLen {
		return l, ErrShort
	}
	if len(msg) > 0xFFFF {
		return l, ErrShort
	}
	qd := binary.BigEndian.Uint16(msg[4:])
	if qd != 1 {
		return l, ErrCount
	}
	off, err := SkipName(msg, HeaderLen)
	if err != nil {
		return l, err
	}
	if off+4 > len(msg) {
		return l, ErrShort
	}
	off += 4
	l.QEnd = off

	an, ns := int(binary.BigEndian.Uint16(msg[6:])), int(binary.BigEndian.Uint16(msg[8:]))
	n := an + ns + int(binary.BigEndian.Uint16(msg[10:]))
	opt := false
	for i := range n {
		owner := off
		off, err = SkipName(msg, off)
		if err != nil {
			return l, err
		}
		if off+10 > len(msg) {
			return l, ErrShort
		}
		typ := binary.BigEndian.Uint16(msg[off:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		ttlOff, rdata := off+4, off+10
		off += 10 + rdlen
		if off > len(msg) {
			return l, ErrShort
		}
		if typ == 41 { // OPT: its "TTL" holds extended RCODE and flags, not a TTL.
			// RFC 6891 §6.1.1: at most one, in the additional section.
			if i < an+ns || opt {
				return l, ErrOPT
			}
			opt = true
			continue
		}
		l.TTLs = append(l.TTLs, uint16(ttlOff)) // #nosec G115 -- len(msg) <= 0xFFFF checked above.
		if err := checkName(msg, owner, len(msg), l.TTLs); err != nil {
			return l, err
		}
		if err := checkRdataNames(msg, typ, rdata, off, l.TTLs); err != nil {
			return l, err
		}
	}
	if off != len(msg) {
		return l, ErrTrail
	}
	return l, nil
}

// checkName follows the name at off, which must end before end, through its compression
// pointers. Every byte a pointer leads to must lie before that pointer (a compressor points
// only at names it has written, which end before the pointer), and no byte of the name may lie
// in a TTL field: patching the TTLs must never change a name. A message that breaks this is
// one no server writes, but a decoder that follows pointers (miekg/dns, a stub resolver)
// would read a name that PatchTTLs rewrites.
func checkName(msg []byte, off, end int, ttls []uint16) error {
	limit, total := end, 0
	for {
		if off >= limit {
			return ErrPointer
		}
		c := int(msg[off])
		n, pointer := c+1, c&0xC0 == 0xC0 // n: bytes this step reads
		if pointer {
			n = 2
		} else if c&0xC0 != 0 {
			return ErrName
		}
		if off+n > limit {
			return ErrPointer
		}
		for _, t := range ttls {
			if off < int(t)+4 && int(t) < off+n {
				return ErrPointer
			}
		}
		switch {
		case c == 0:
			return nil
		case pointer:
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
			if ptr < HeaderLen || ptr >= off {
				return ErrPointer
			}
			limit, off = off, ptr // positions strictly decrease: no loop
		default:
			if total += n; total > maxNameLen {
				return ErrName
			}
			off += n
		}
	}
}

// checkRdataNames checks, as checkName does, the domain names in the RDATA [start, end) of
// the record types whose names may be compressed (RFC 3597 §4, and those decoders also
// decompress: RFC 2163 PX, RFC 2782 SRV, RFC 6672 DNAME, RFC 1183 RP and AFSDB, RT, RFC 2230 KX).
func checkRdataNames(msg []byte, typ uint16, start, end int, ttls []uint16) error {
	var skip, names int // fixed bytes before the names, and how many names follow
	switch typ {
	case 2, 3, 4, 5, 7, 8, 9, 12, 39: // NS MD MF CNAME MB MG MR PTR DNAME
		names = 1
	case 6, 14, 17: // SOA (then 20 bytes of numbers), MINFO, RP
		names = 2
	case 15, 18, 21, 36: // MX AFSDB RT KX: a 16-bit preference, then a name
		skip, names = 2, 1
	case 26: // PX: a preference, then two names
		skip, names = 2, 2
	case 33: // SRV: priority, weight, port, then a name
		skip, names = 6, 1
	default:
		return nil
	}
	off := start + skip
	for range names {
		if off >= end {
			return ErrShort
		}
		if err := checkName(msg, off, end, ttls); err != nil {
			return err
		}
		next, err := SkipName(msg, off)
		if err != nil {
			return err
		}
		off = next
	}
	return nil
}

// SkipName returns the offset just past the (possibly compressed) domain name at off.
func SkipName(msg []byte, off int) (int, error) {
	start, total := off, 0
	for {
		if off >= len(msg) {
			return 0, ErrShort
		}
		c := int(msg[off])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				return off + 1, nil
			}
			total += c + 1
			if total > maxNameLen {
				return 0, ErrName
			}
			off += c + 1
		case 0xC0:
			if off+2 > len(msg) {
				return 0, ErrShort
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
			// A pointer must point backwards, to earlier data (RFC 1035 §4.1.4), and not into the header.
			if ptr < HeaderLen || ptr >= start {
				return 0, ErrPointer
			}
			return off + 2, nil
		default: // 0x40 and 0x80 are reserved (RFC 6891 §5 retired extended labels).
			return 0, ErrName
		}
	}
}

// PatchTTLs writes ttl into the TTL field at every offset in offs.
func PatchTTLs(msg []byte, offs []uint16, ttl uint32) {
	for _, o := range offs {
		binary.BigEndian.PutUint32(msg[o:], ttl)
	}
}

// CopyCase gives the uncompressed wire name at off in msg the letter case of name, a
// domain name in presentation format that is equal to it ignoring ASCII case (RFC 4343).
// It keeps the 0x20 bits a client chose. It returns false and leaves msg alone when
// name holds escapes or does not match the wire name.
func CopyCase(msg []byte, off int, name string) bool {
	if !walkCase(msg, off, name, false) {
		return false
	}
	walkCase(msg, off, name, true)
	return true
}

// EqualName reports whether the uncompressed wire name at off in msg is name, a domain name
// in presentation format, ignoring ASCII case (RFC 4343). A name with escapes never matches.
func EqualName(msg []byte, off int, name string) bool { return walkCase(msg, off, name, false) }

func walkCase(msg []byte, off int, name string, write bool) bool {
	if name == "." {
		return off < len(msg) && msg[off] == 0
	}
	j := 0
	for {
		if off >= len(msg) {
			return false
		}
		c := int(msg[off])
		if c == 0 {
			return j == len(name)
		}
		if c&0xC0 != 0 || off+1+c > len(msg) || j+c > len(name) {
			return false
		}
		lab, w := name[j:j+c], msg[off+1:off+1+c]
		if write {
			copy(w, lab)
		} else {
			for i := range c {
				if !sameFold(lab[i], w[i]) {
					return false
				}
			}
		}
		j += c
		off += 1 + c
		// Every label ends in a dot, the last one optionally (a name not fully qualified).
		if j < len(name) {
			if name[j] != '.' {
				return false
			}
			j++
		}
	}
}

// sameFold reports whether presentation byte a stands for wire byte b, ignoring ASCII case.
func sameFold(a, b byte) bool {
	if a == '\\' || a == '.' {
		return false
	}
	if a == b {
		return true
	}
	la, lb := a|0x20, b|0x20
	return la == lb && la >= 'a' && la <= 'z'
}
