package warmcache

import (
	"strings"

	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/miekg/dns"
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

// foldEqual reports whether the wire names a and b are equal ignoring ASCII case. Label
// lengths are below 64, so folding letters never confuses them with a length.
func foldEqual(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
			return false
		}
	}
	return true
}

// nameEqual reports whether the uncompressed wire name at off in msg is name, a domain
// name in presentation format, ignoring ASCII case (RFC 4343).
func nameEqual(msg []byte, off int, name string) bool {
	if wire.EqualName(msg, off, name) {
		return true
	}
	if strings.IndexByte(name, '\\') < 0 {
		return false
	}
	var buf [256]byte
	end, err := dns.PackDomainName(name, buf[:], 0, nil, false)
	return err == nil && off+end <= len(msg) && foldEqual(buf[:end], msg[off:off+end])
}

// qname returns the lower-cased question name of the packed message msg.
func qname(msg []byte) string {
	name, _, err := dns.UnpackDomainName(msg, wire.HeaderLen)
	if err != nil {
		return ""
	}
	return asciiLower(name)
}
