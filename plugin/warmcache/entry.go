package warmcache

import (
	"encoding/binary"
	"sync/atomic"
	"time"
	"unsafe"

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

// record is the fixed part of a stored entry, in its shard's record chunks (slab.go). It
// holds no Go pointer. Its payload block holds the packed response (ID zero, no OPT, no
// TSIG, uncompressed) followed by the offsets of its TTL fields, two bytes each, little
// endian. The question of the stored response is the entry's key: its name, type and
// class; the record adds DO and CD.
type record struct {
	hash    uint64
	stored  int64        // unix nanoseconds at insert
	hits    atomic.Int64 // requests answered by this key (misses included) since it was last quiet
	lastHit atomic.Int64 // unix nanoseconds
	origin  atomic.Uint32
	block   uint32 // slab ref of the payload; for a free slot, the next free slot + 1
	ttl     uint32
	gen     uint32 // bumped each time the slot is freed
	msgLen  uint16
	qEnd    uint16 // offset past the question section
	nTTL    uint16
	class   class
	rcode   uint8
	flags   uint8
	// inflight is set while a sweeper refresh of the entry runs.
	inflight atomic.Bool
}

// recordSize is the bytes a record takes in its chunk.
const recordSize = 64

// Both fail to compile unless unsafe.Sizeof(record{}) == recordSize.
var (
	_ [recordSize - unsafe.Sizeof(record{})]byte
	_ [unsafe.Sizeof(record{}) - recordSize]byte
)

// record flags.
const (
	recLive = 1 << iota
	recDO
	recCD
	recAD // AD bit of the stored response
)

func (r *record) payloadLen() int { return int(r.msgLen) + 2*int(r.nTTL) }

// qtype and qclass return the type and class of the stored question, from the payload p.
func (r *record) qtype(p []byte) uint16  { return binary.BigEndian.Uint16(p[r.qEnd-4:]) }
func (r *record) qclass(p []byte) uint16 { return binary.BigEndian.Uint16(p[r.qEnd-2:]) }

// remaining returns the TTL left at now, which is negative once the entry expired.
func (r *record) remaining(now int64) int64 {
	return int64(r.ttl) - (now-r.stored)/int64(time.Second)
}

// expires returns when the entry expires, in unix nanoseconds.
func (r *record) expires() int64 { return r.stored + int64(r.ttl)*int64(time.Second) }

// touch records a request answered by the entry.
func (r *record) touch(now int64) {
	r.hits.Add(1)
	r.lastHit.Store(now)
}

// ref names one stored entry: its hash, its slot in the shard, and the generation of the
// slot, so that a ref to an entry since removed or replaced refers to nothing.
type ref struct {
	hash      uint64
	slot, gen uint32
}

// entry is an entry outside the store: one about to be stored (newEntry), or a copy of a
// stored one for a request that answers from it later (stale answers, coalesced misses) or
// for the sweeper. Its popularity is what it was when copied; changes go to the store by
// ref.
type entry struct {
	ref
	key key

	msg  []byte // packed response: ID zero, no OPT, no TSIG, uncompressed
	ttls []byte // offsets of every TTL field in msg, two bytes each, little endian
	qEnd int    // offset past the question section
	ad   bool   // AD bit of the stored response

	class  class
	rcode  int
	stored int64 // unix nanoseconds at insert
	ttl    uint32

	hits, lastHit int64
	origin        uint32 // index of a request context the sweeper refreshes with (origins.go), 0 for none
}

// newEntry packs m into an entry. m is not modified. It returns nil when m can't be packed
// or walked, or is too large to store.
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
	if err != nil || len(buf) > dns.MaxMsgSize {
		return nil
	}
	l, err := wire.Walk(buf, make([]uint16, 0, len(m1.Answer)+len(m1.Ns)+len(m1.Extra)))
	if err != nil || len(l.TTLs) > 0xFFFF {
		return nil
	}
	ttls := make([]byte, 2*len(l.TTLs))
	for i, o := range l.TTLs {
		binary.LittleEndian.PutUint16(ttls[2*i:], o)
	}
	return &entry{
		ref: ref{hash: h}, key: k,
		msg: buf, ttls: ttls, qEnd: l.QEnd, ad: m.AuthenticatedData,
		class: cl, rcode: m.Rcode, stored: now.UnixNano(), ttl: ttl,
	}
}

// size is what e takes in a store, as counted against max_bytes: its payload's block,
// slack included, and its record. The index is counted per table (store.go).
func (e *entry) size() int64 { return int64(blockSize(len(e.msg)+len(e.ttls)) + recordSize) }

// remaining returns the TTL left at now, which is negative once the entry expired.
func (e *entry) remaining(now int64) int64 {
	return int64(e.ttl) - (now-e.stored)/int64(time.Second)
}

// expires returns when the entry expires, in unix nanoseconds.
func (e *entry) expires() int64 { return e.stored + int64(e.ttl)*int64(time.Second) }
