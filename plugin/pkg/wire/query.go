package wire

import (
	"encoding/binary"
	"errors"
)

// ErrNotPlain is returned by ParseQuery for a well-formed message that is not a plain
// query a cache may answer from its bytes alone.
var ErrNotPlain = errors.New("wire: not a plain query")

// Query is what a cache needs of a plain query: one question, no records but an OPT
// without options.
type Query struct {
	ID uint16
	// RD, CD and AD are the request's header bits (RFC 1035 §4.1.1, RFC 4035 §3.2).
	RD, CD, AD bool
	// QNameEnd is the offset past the question name, which starts at HeaderLen; QEnd the
	// offset past the question.
	QNameEnd, QEnd int
	Qtype, Qclass  uint16
	// Plain reports whether every label byte is a letter, digit, '-', '_' or '*': the
	// name's presentation format is then its labels joined by dots.
	Plain bool
	// EDNS reports an OPT record (RFC 6891); UDPSize, DO and FlagsHi (the upper byte of
	// its flags, which holds DO) are its fields.
	EDNS    bool
	UDPSize uint16
	DO      bool
	FlagsHi byte
}

// ParseQuery checks that msg is a plain query and returns its fields. It returns
// ErrNotPlain for anything a cache must leave to the full server: a response, another
// opcode, TC, a non-zero RCODE, not exactly one question, records other than one OPT,
// a compressed question name, an OPT of another version or with an extended RCODE or
// options; and an error of Walk's for malformed bytes.
func ParseQuery(msg []byte) (Query, error) {
	var q Query
	if len(msg) < HeaderLen {
		return q, ErrShort
	}
	if len(msg) > 0xFFFF {
		return q, ErrShort
	}
	b2, b3 := msg[2], msg[3]
	// QR, opcode 0 (QUERY) and TC in byte 2; RCODE in byte 3.
	if b2&0xFA != 0 || b3&0x0F != 0 {
		return q, ErrNotPlain
	}
	if binary.BigEndian.Uint16(msg[4:]) != 1 || binary.BigEndian.Uint16(msg[6:]) != 0 || binary.BigEndian.Uint16(msg[8:]) != 0 {
		return q, ErrNotPlain
	}
	ar := binary.BigEndian.Uint16(msg[10:])
	if ar > 1 {
		return q, ErrNotPlain
	}
	q.ID = binary.BigEndian.Uint16(msg)
	q.RD, q.AD, q.CD = b2&0x01 != 0, b3&0x20 != 0, b3&0x10 != 0

	off, total, plain := HeaderLen, 0, true
	for {
		if off >= len(msg) {
			return q, ErrShort
		}
		c := int(msg[off])
		if c == 0 {
			off++
			break
		}
		if c&0xC0 != 0 {
			return q, ErrNotPlain // compressed or reserved label type in a question
		}
		total += c + 1
		if total > maxNameLen || off+1+c > len(msg) {
			return q, ErrName
		}
		for _, b := range msg[off+1 : off+1+c] {
			if !plainByte(b) {
				plain = false
			}
		}
		off += 1 + c
	}
	if off+4 > len(msg) {
		return q, ErrShort
	}
	q.QNameEnd, q.Plain = off, plain
	q.Qtype = binary.BigEndian.Uint16(msg[off:])
	q.Qclass = binary.BigEndian.Uint16(msg[off+2:])
	off += 4
	q.QEnd = off
	if ar == 0 {
		if off != len(msg) {
			return q, ErrTrail
		}
		return q, nil
	}
	// The OPT record: root owner, type 41, class = UDP size, TTL = extended RCODE, version,
	// flags; RDLENGTH 0.
	if off+11 != len(msg) {
		if off+11 > len(msg) {
			return q, ErrShort
		}
		return q, ErrNotPlain // options, or trailing bytes
	}
	o := msg[off:]
	if o[0] != 0 || binary.BigEndian.Uint16(o[1:]) != 41 {
		return q, ErrNotPlain
	}
	if o[5] != 0 || o[6] != 0 || o[9] != 0 || o[10] != 0 {
		return q, ErrNotPlain // extended RCODE, version other than 0 (BADVERS), options
	}
	q.EDNS = true
	q.UDPSize = binary.BigEndian.Uint16(o[3:])
	q.FlagsHi = o[7]
	q.DO = o[7]&0x80 != 0
	return q, nil
}

func plainByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '*'
}

// AppendName appends the presentation format of the plain question name of msg, which
// ParseQuery accepted, to dst.
func (q Query) AppendName(dst []byte, msg []byte) []byte {
	off := HeaderLen
	if msg[off] == 0 {
		return append(dst, '.')
	}
	for msg[off] != 0 {
		c := int(msg[off])
		dst = append(dst, msg[off+1:off+1+c]...)
		dst = append(dst, '.')
		off += 1 + c
	}
	return dst
}
