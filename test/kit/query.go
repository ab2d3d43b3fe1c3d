package kit

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/miekg/dns"
)

// Query is one question to ask.
type Query struct {
	Name string // fully qualified or not; a final dot is added
	Type uint16 // dns.TypeA when 0
}

// appendQuery appends a DNS query in wire format (RFC 1035 §4.1) with RD set and, when edns
// is true, an OPT record advertising a 1232-byte UDP size (RFC 6891).
func appendQuery(b []byte, id uint16, q Query, edns bool) ([]byte, error) {
	var hdr [12]byte
	binary.BigEndian.PutUint16(hdr[0:], id)
	hdr[2] = 0x01 // RD
	binary.BigEndian.PutUint16(hdr[4:], 1)
	if edns {
		binary.BigEndian.PutUint16(hdr[10:], 1)
	}
	b = append(b, hdr[:]...)
	var name [256]byte
	n, err := dns.PackDomainName(dns.Fqdn(q.Name), name[:], 0, nil, false)
	if err != nil {
		return b, err
	}
	b = append(b, name[:n]...)
	t := q.Type
	if t == 0 {
		t = dns.TypeA
	}
	b = binary.BigEndian.AppendUint16(b, t)
	b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
	if edns {
		// root name, TYPE OPT, CLASS = UDP size, TTL 0, RDLEN 0
		b = append(b, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0)
	}
	return b, nil
}

// Answers returns the answer section's records of type qtype as sorted strings: the address
// for A and AAAA, the target for CNAME and PTR, "PORT TARGET" for SRV.
func Answers(r *dns.Msg, qtype uint16) []string {
	var out []string
	for _, rr := range r.Answer {
		if rr.Header().Rrtype != qtype {
			continue
		}
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		case *dns.CNAME:
			out = append(out, v.Target)
		case *dns.PTR:
			out = append(out, v.Ptr)
		case *dns.SRV:
			out = append(out, fmt.Sprintf("%d %s", v.Port, v.Target))
		}
	}
	sort.Strings(out)
	return out
}
