package warmcache

import (
	"strings"

	"github.com/miekg/dns"
)

// answersQuestion reports whether the answer section of m, a NOERROR response, answers its
// question: it holds a record of the queried type at the end of the CNAME chain that starts
// at the question name (RFC 1034 §3.6.2), any record at the name for ANY, and the CNAME for
// CNAME. A chain with a loop or with an owner aliased twice (RFC 2181 §10.1) answers
// nothing. Without an SOA to bound it, a response that does not answer is an SOA-less
// NODATA, which is not cached (RFC 2308 §5): cache decides the same way.
func answersQuestion(m *dns.Msg) bool {
	q := m.Question[0]
	in := func(rr dns.RR) bool { return q.Qclass == dns.ClassANY || rr.Header().Class == q.Qclass }
	target := func(owner string) (string, bool) {
		t := ""
		for _, rr := range m.Answer {
			c, ok := rr.(*dns.CNAME)
			if !ok || !in(rr) || !strings.EqualFold(c.Hdr.Name, owner) {
				continue
			}
			if t != "" && !strings.EqualFold(t, c.Target) {
				return "", false
			}
			t = c.Target
		}
		return t, true
	}
	name := q.Name
	switch q.Qtype {
	case dns.TypeANY:
		for _, rr := range m.Answer {
			if in(rr) && strings.EqualFold(rr.Header().Name, name) {
				return true
			}
		}
		return false
	case dns.TypeCNAME:
		t, ok := target(name)
		return ok && t != ""
	}
	seen := map[string]bool{}
	for {
		k := strings.ToLower(name)
		if seen[k] {
			return false // a loop
		}
		seen[k] = true
		t, ok := target(name)
		if !ok {
			return false
		}
		if t == "" {
			break
		}
		name = t
	}
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == q.Qtype && in(rr) && strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}
