package warmcache

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/miekg/dns"
)

// class is what kind of answer an entry holds; each has its own capacity and TTLs.
type class uint8

const (
	classSuccess class = iota
	classDenial        // NXDOMAIN and NODATA (RFC 2308)
	classFailure       // SERVFAIL
)

// key identifies an entry: lower-cased qname, qtype, qclass, DO and CD, as CoreDNS cache.
type key struct {
	name   string
	qtype  uint16
	qclass uint16
	do, cd bool
}

// entry is a cached response kept in packed form.
type entry struct {
	key  key
	hash uint64

	msg  []byte   // packed response: ID zero, no OPT, no TSIG
	ttls []uint16 // offsets of every TTL field in msg
	qEnd int      // offset past the question section
	ad   bool     // AD bit of the stored response

	class  class
	rcode  int
	stored int64 // unix nanoseconds at insert
	ttl    uint32
	size   int64 // bytes accounted against max_bytes

	origin atomic.Uint32 // index of a request context the sweeper refreshes with (origins.go), 0 for none

	hits     atomic.Int64 // requests answered by this key (misses included) since it was last quiet
	lastHit  atomic.Int64 // unix nanoseconds
	inflight atomic.Bool  // a sweeper refresh is running
}

// entryOverhead approximates the fixed memory of an entry beyond its byte slices.
const entryOverhead = 256

// newEntry packs m into an entry. m is not modified. It returns nil when m can't be packed
// or walked.
func newEntry(k key, h uint64, m *dns.Msg, cl class, ttl uint32, now time.Time) *entry {
	m1 := new(dns.Msg)
	m1.MsgHdr = m.MsgHdr
	m1.Id = 0
	// Uncompressed, as cache's replies are: a compression pointer into the question would give
	// the records the letter case of each client's question.
	m1.Compress = false
	m1.Question = m.Question[:1]
	m1.Answer, m1.Ns = m.Answer, m.Ns
	// OPT and TSIG are hop-by-hop (RFC 6891 §6.1.1, RFC 8945 §5.3); the hit path adds its own OPT.
	m1.Extra = make([]dns.RR, 0, len(m.Extra))
	for _, rr := range m.Extra {
		if t := rr.Header().Rrtype; t != dns.TypeOPT && t != dns.TypeTSIG {
			m1.Extra = append(m1.Extra, rr)
		}
	}
	buf, err := m1.Pack()
	if err != nil {
		return nil
	}
	l, err := wire.Walk(buf, make([]uint16, 0, len(m1.Answer)+len(m1.Ns)+len(m1.Extra)))
	if err != nil {
		return nil
	}
	e := &entry{
		key: k, hash: h,
		msg: buf, ttls: l.TTLs, qEnd: l.QEnd, ad: m.AuthenticatedData,
		class: cl, rcode: m.Rcode, stored: now.UnixNano(), ttl: ttl,
	}
	e.size = int64(2*len(buf)+2*len(e.ttls)+len(k.name)) + entryOverhead
	return e
}

// remaining returns the TTL left at now, which is negative once the entry expired.
func (e *entry) remaining(now int64) int64 {
	return int64(e.ttl) - (now-e.stored)/int64(time.Second)
}

// expires returns when the entry expires, in unix nanoseconds.
func (e *entry) expires() int64 { return e.stored + int64(e.ttl)*int64(time.Second) }

// matches reports whether e answers a request for name (any case), qtype, qclass, do and cd.
func (e *entry) matches(name string, qtype, qclass uint16, do, cd bool) bool {
	return e.key.qtype == qtype && e.key.qclass == qclass && e.key.do == do && e.key.cd == cd &&
		strings.EqualFold(e.key.name, name)
}

// hit records a request answered by e.
func (e *entry) hit(now int64) {
	e.hits.Add(1)
	e.lastHit.Store(now)
}
