package racetls

import (
	"encoding/binary"
	"errors"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
)

// headerLen is the DNS header's length.
const headerLen = wire.HeaderLen

var errQuestion = errors.New("query has no single question")

// questionLen returns the length of the first question (name, type, class) of
// the packed message m. A query's question name is never compressed: it is the
// first name in the message, so there is nothing before it to point to (SkipName
// refuses such a pointer).
func questionLen(m []byte) (int, error) {
	if len(m) < headerLen || binary.BigEndian.Uint16(m[4:]) != 1 {
		return 0, errQuestion
	}
	off, err := wire.SkipName(m, headerLen)
	if err != nil || off+4 > len(m) {
		return 0, errQuestion
	}
	return off + 4 - headerLen, nil
}

// sameQuestion reports whether the reply m carries exactly one question equal
// to q (the query's question bytes, name + type + class). Names compare
// ASCII-case-insensitively (resolvers may or may not echo 0x20 case); type
// and class compare exactly.
func sameQuestion(q, m []byte) bool {
	if len(m) < headerLen+len(q) || binary.BigEndian.Uint16(m[4:]) != 1 {
		return false
	}
	r := m[headerLen : headerLen+len(q)]
	nameEnd := len(q) - 4
	for i := 0; i < nameEnd; {
		l := int(q[i])
		if r[i] != q[i] {
			return false
		}
		for j := i + 1; j <= i+l; j++ {
			if lower(r[j]) != lower(q[j]) {
				return false
			}
		}
		i += l + 1
	}
	return string(r[nameEnd:]) == string(q[nameEnd:])
}

func lower(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// rcode returns the (non-extended) RCODE of the packed message m.
func rcode(m []byte) int { return int(m[3] & 0x0F) }

// isResponse reports whether m is long enough to be a DNS message and has QR set.
func isResponse(m []byte) bool { return len(m) >= headerLen && m[2]&0x80 != 0 }
