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
	if matchFold(msg, off, name, false) {
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

// matchFold is nameEqual for a name without escapes (a name with some never matches).
// With write, it also gives the wire name the letter case of name, which must match.
func matchFold(msg []byte, off int, name string, write bool) bool {
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
		if write {
			copy(msg[off+1:off+1+c], name[j:j+c])
		} else {
			for i := range c {
				x, y := name[j+i], msg[off+1+i]
				if x == '.' || x == '\\' || (x != y && (x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z')) {
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
