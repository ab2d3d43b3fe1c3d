package lab

import (
	"hash/fnv"
	"net"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Zone parameters of the synthetic answers.
const (
	SOATTL     = 60 // TTL of the SOA record in negative answers
	SOAMinimum = 30 // the SOA's MINIMUM field (RFC 2308 negative TTL)
	BigCount   = 40 // records per type in a big* answer
	maxChain   = 16 // longest CNAME chain a cnameN* name yields
)

// AddrA returns the IPv4 address (198.18.x.y, RFC 2544 benchmarking space) that the lab
// answers for name; the case of name does not matter.
func AddrA(name string) net.IP {
	x, y := nameHash(name)
	return net.IPv4(198, 18, x, y).To4()
}

// AddrAAAA returns the IPv6 address (2001:db8::x:y) that the lab answers for name.
func AddrAAAA(name string) net.IP {
	x, y := nameHash(name)
	ip := net.ParseIP("2001:db8::")
	ip[13], ip[15] = x, y
	return ip
}

func nameHash(name string) (byte, byte) {
	h := fnv.New32a()
	h.Write([]byte(dns.Fqdn(strings.ToLower(name))))
	s := h.Sum32()
	return byte(s >> 8), byte(s)
}

// SOAOwner returns the owner of the SOA the lab puts in negative answers for name: the
// name's last label, or "." for a single-label name.
func SOAOwner(name string) string {
	labels := dns.SplitDomainName(name)
	if len(labels) <= 1 {
		return "."
	}
	return strings.ToLower(labels[len(labels)-1]) + "."
}

func soa(name string) dns.RR {
	z := SOAOwner(name)
	ns := "ns.lab.test."
	if z != "." {
		ns = "ns." + z
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: z, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: SOATTL},
		Ns:      ns,
		Mbox:    "hostmaster." + strings.TrimPrefix(ns, "ns."),
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  SOAMinimum,
	}
}

// zone answers the synthetic zone. records holds exact-name overrides with lower-cased
// fully qualified keys.
type zone struct {
	ttl     uint32
	records map[string][]dns.RR
}

// answer fills m (a reply whose question is set) for qname/qtype.
func (z *zone) answer(m *dns.Msg, qname string, qtype uint16) {
	for range maxChain + 1 {
		lower := strings.ToLower(qname)
		if rrs, ok := z.records[lower]; ok {
			z.override(m, rrs, qtype)
			return
		}
		labels := dns.SplitDomainName(lower)
		label := ""
		if len(labels) > 0 {
			label = labels[0]
		}
		ttl := z.ttl
		if n, ok := numPrefix(label, "ttl"); ok {
			ttl = uint32(n)
		}
		switch {
		case strings.HasPrefix(label, "nx"):
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{soa(qname)}
			return
		case strings.HasPrefix(label, "servfail"):
			m.Rcode = dns.RcodeServerFailure
			return
		case strings.HasPrefix(label, "cname"):
			target := chainTarget(qname, label)
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(qname, dns.TypeCNAME, ttl), Target: target})
			if qtype == dns.TypeCNAME {
				return
			}
			qname = target
			continue
		}
		a, aaaa := true, true
		var ip4, ip6 net.IP = AddrA(lower), AddrAAAA(lower)
		n := 1
		switch {
		case strings.HasPrefix(label, "loop"):
			ip4, ip6 = net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback
		case strings.HasPrefix(label, "v4"):
			aaaa = false
		case strings.HasPrefix(label, "v6"):
			a = false
		case strings.HasPrefix(label, "nodata"):
			a, aaaa = false, false
		case strings.HasPrefix(label, "big"):
			n = BigCount
		}
		switch {
		case qtype == dns.TypeA && a:
			for i := range n {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr(qname, dns.TypeA, ttl), A: nth4(ip4, i)})
			}
		case qtype == dns.TypeAAAA && aaaa:
			for i := range n {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(qname, dns.TypeAAAA, ttl), AAAA: nth6(ip6, i)})
			}
		default:
			m.Ns = []dns.RR{soa(qname)} // NODATA, RFC 2308 §2.2
		}
		return
	}
}

// override answers from configured records: those of qtype, and CNAMEs (not chased).
func (z *zone) override(m *dns.Msg, rrs []dns.RR, qtype uint16) {
	for _, rr := range rrs {
		if t := rr.Header().Rrtype; t == qtype || t == dns.TypeCNAME {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	if len(m.Answer) == 0 && len(rrs) > 0 {
		m.Ns = []dns.RR{soa(rrs[0].Header().Name)}
	}
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

func nth4(ip net.IP, i int) net.IP {
	if i == 0 {
		return ip
	}
	out := append(net.IP(nil), ip...)
	out[3] = byte(i)
	return out
}

func nth6(ip net.IP, i int) net.IP {
	if i == 0 {
		return ip
	}
	out := append(net.IP(nil), ip...)
	out[14], out[15] = 0xff, byte(i)
	return out
}

// numPrefix parses the number after prefix in label ("ttl4-x" → 4).
func numPrefix(label, prefix string) (int, bool) {
	if !strings.HasPrefix(label, prefix) {
		return 0, false
	}
	s := label[len(prefix):]
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.Atoi(s[:i])
	return n, err == nil
}

// chainTarget returns the next name of a cnameN chain: cname3-x.example. → cname2-x.example.
// → cname1-x.example. → x.example. N defaults to 1; an empty rest becomes "a".
func chainTarget(qname, label string) string {
	rest := strings.TrimPrefix(label, "cname")
	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	n, err := strconv.Atoi(rest[:digits])
	if err != nil || n < 1 {
		n = 1
	}
	n = min(n, maxChain)
	rest = strings.TrimPrefix(rest[digits:], "-")
	if rest == "" {
		rest = "a"
	}
	// Keep the case of the query's remaining labels (0x20).
	next, _ := dns.NextLabel(qname, 0)
	suffix := qname[next-1:]
	if n > 1 {
		return "cname" + strconv.Itoa(n-1) + "-" + rest + suffix
	}
	return rest + suffix
}
