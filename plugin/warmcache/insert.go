package warmcache

import (
	"strings"
	"time"

	"github.com/miekg/dns"
)

// insert caches m, the response to a query for k, and returns the new entry (a copy
// outside the store, with the ref of the stored one) and the entry it replaced, or nil
// when m is not cacheable. hits and lastHit are the popularity the entry starts with,
// origin the request context a refresh uses (origins.go).
func (c *WarmCache) insert(k key, h uint64, m *dns.Msg, now time.Time, hits, lastHit int64, origin uint32) (*entry, replaced) {
	// Truncated replies are incomplete (RFC 2181 §9); the client retries over TCP.
	if m.Truncated || m.Opcode != dns.OpcodeQuery || len(m.Question) != 1 {
		return nil, replaced{}
	}
	if q := m.Question[0]; q.Qtype != k.qtype || q.Qclass != k.qclass || !strings.EqualFold(q.Name, k.name) {
		return nil, replaced{}
	}
	cl, ttl, ok := c.lifetime(m)
	if !ok || ttl <= 0 {
		return nil, replaced{}
	}
	if cl == classFailure {
		// A SERVFAIL never displaces an answer that is still good or may be served stale.
		if old := c.store.get(h); old != nil && old.class != classFailure && old.key == k {
			if rem := old.remaining(now.UnixNano()); rem > 0 || c.servesStale(old.class, rem) {
				return nil, replaced{}
			}
		}
	}
	e := newEntry(k, h, m, cl, uint32(ttl/time.Second), now) // #nosec G115 -- clamped to at most max TTL.
	if e == nil {
		return nil, replaced{}
	}
	// Set before the entry is visible: a concurrent eviction must not see it with no
	// requests, the coldest an entry can be.
	e.hits, e.lastHit, e.origin = hits, lastHit, origin
	old, evicted, ok := c.store.put(e, now.UnixNano())
	if !ok {
		return nil, replaced{}
	}
	if evicted > 0 {
		c.metrics.current().evictions.Add(float64(evicted))
	}
	return e, old
}

// lifetime classifies m and returns how long it may be cached.
func (c *WarmCache) lifetime(m *dns.Msg) (class, time.Duration, bool) {
	soa := findSOA(m.Ns)
	switch m.Rcode {
	case dns.RcodeSuccess:
		if len(m.Answer) == 0 && soa == nil {
			if !hasType(m.Ns, dns.TypeNS) {
				return 0, 0, false // neither an answer, nor NODATA, nor a referral
			}
			return classSuccess, clamp(minTTL(m), c.minpttl, c.pttl), true
		}
		if len(m.Answer) == 0 {
			return classDenial, clamp(negativeTTL(m, soa), c.minnttl, c.nttl), true
		}
		if soa == nil && !answersQuestion(m) {
			return 0, 0, false // an SOA-less NODATA: a CNAME chain that does not end in the type
		}
		ttl := minTTL(m)
		if soa != nil {
			// A CNAME chain that ends in NODATA: the SOA bounds the denial part.
			ttl = min(ttl, negativeTTL(m, soa))
		}
		return classSuccess, clamp(ttl, c.minpttl, c.pttl), true
	case dns.RcodeNameError:
		// RFC 2308 §5: a negative answer without an SOA should not be cached.
		if soa == nil {
			return 0, 0, false
		}
		return classDenial, clamp(negativeTTL(m, soa), c.minnttl, c.nttl), true
	case dns.RcodeServerFailure:
		// RFC 2308 §7.1: a server failure may be cached, for no more than five minutes.
		return classFailure, min(c.failttl, 5*time.Minute), c.failttl > 0
	}
	return 0, 0, false
}

// negativeTTL is the TTL of a negative answer: RFC 2308 §5, the smaller of the SOA's
// own TTL and its MINIMUM field, and no more than any other record in the answer.
func negativeTTL(m *dns.Msg, soa *dns.SOA) time.Duration {
	ttl := min(soa.Hdr.Ttl, soa.Minttl)
	for _, rr := range m.Answer {
		ttl = min(ttl, rr.Header().Ttl)
	}
	return time.Duration(ttl) * time.Second
}

// minTTL is the smallest TTL of the records in m, OPT excluded.
func minTTL(m *dns.Msg) time.Duration {
	ttl := uint32(1<<31 - 1) // RFC 2181 §8
	for _, s := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range s {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			ttl = min(ttl, rr.Header().Ttl)
		}
	}
	return time.Duration(ttl) * time.Second
}

func clamp(ttl, lo, hi time.Duration) time.Duration { return min(max(ttl, lo), hi) }

func findSOA(rrs []dns.RR) *dns.SOA {
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa
		}
	}
	return nil
}

func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}
