package wire

import "encoding/binary"

// QuestionLen returns the length of the single question (name, type, class) that follows
// the header of msg. A query's question name is never compressed: it is the first name of
// the message, so there is nothing before it to point to (SkipName refuses such a pointer).
// It returns ErrShort, ErrCount or an error of SkipName's.
func QuestionLen(msg []byte) (int, error) {
	if len(msg) < HeaderLen {
		return 0, ErrShort
	}
	if binary.BigEndian.Uint16(msg[4:]) != 1 {
		return 0, ErrCount
	}
	off, err := SkipName(msg, HeaderLen)
	if err != nil {
		return 0, err
	}
	if off+4 > len(msg) {
		return 0, ErrShort
	}
	return off + 4 - HeaderLen, nil
}

// SameQuestion reports whether reply carries exactly one question equal to q, the question
// bytes of a query (msg[HeaderLen:HeaderLen+QuestionLen(msg)]). Names compare ignoring
// ASCII case (RFC 4343: a server may or may not echo the 0x20 case of the query); label
// lengths, type and class compare exactly.
func SameQuestion(q, reply []byte) bool {
	if len(q) < 5 || len(reply) < HeaderLen+len(q) || binary.BigEndian.Uint16(reply[4:]) != 1 {
		return false
	}
	r := reply[HeaderLen : HeaderLen+len(q)]
	nameEnd := len(q) - 4
	i := 0
	for {
		if i >= nameEnd || r[i] != q[i] {
			return false
		}
		l := int(q[i])
		if l == 0 { // the root label ends the name
			break
		}
		if i+l >= nameEnd {
			return false
		}
		for j := i + 1; j <= i+l; j++ {
			if lower(r[j]) != lower(q[j]) {
				return false
			}
		}
		i += l + 1
	}
	return i == nameEnd-1 && string(r[nameEnd:]) == string(q[nameEnd:])
}

func lower(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// Rcode returns the 4-bit RCODE of the header of msg (RFC 1035 §4.1.1), or -1 when msg is
// shorter than a header.
func Rcode(msg []byte) int {
	if len(msg) < HeaderLen {
		return -1
	}
	return int(msg[3] & 0x0F)
}
