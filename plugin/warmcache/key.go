package warmcache

import (
	"strings"
)

// FNV-1a, 64 bit.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashKey hashes the key of a request without allocating: the qname is lower-cased
// (ASCII, RFC 4343) byte by byte as it is hashed. Entries keep their full key, so a
// collision costs a miss, never a wrong answer.
func hashKey[S string | []byte](qname S, qtype, qclass uint16, do, cd bool) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(qname); i++ {
		b := qname[i]
		if 'A' <= b && b <= 'Z' {
			b |= 0x20
		}
		h = (h ^ uint64(b)) * fnvPrime
	}
	var flags uint64
	if do {
		flags |= 1
	}
	if cd {
		flags |= 2
	}
	for _, v := range [...]uint64{uint64(qtype) >> 8, uint64(qtype) & 0xFF, uint64(qclass) >> 8, uint64(qclass) & 0xFF, flags} {
		h = (h ^ v) * fnvPrime
	}
	return h
}

// makeKey returns the key of a request.
func makeKey(qname string, qtype, qclass uint16, do, cd bool) key {
	return key{name: asciiLower(qname), qtype: qtype, qclass: qclass, do: do, cd: cd}
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// equalFold reports whether a and b are equal ignoring ASCII case (RFC 4343).
func equalFold[S string | []byte](a string, b S) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x |= 0x20
		}
		if 'A' <= y && y <= 'Z' {
			y |= 0x20
		}
		if x != y {
			return false
		}
	}
	return true
}
