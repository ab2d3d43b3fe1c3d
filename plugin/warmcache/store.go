package warmcache

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
)

// store is a sharded table of entries bounded by entries per class and by bytes. Each
// shard has an open-addressing index from hash to slot, an array of records by slot, and
// the entries' payloads in the store's slab (slab.go); none of it holds a Go pointer per
// entry. Every access to a shard's records, index or payloads happens under the shard's
// lock: hits under the read lock, changes under the write lock, which is how a payload is
// never freed or reused while a hit copies it.
//
// max_bytes counts what the entries hold: each payload's block with its size-class slack,
// a record per entry, and every shard's index table. Blocks, records and index buckets
// that are free are reused by later entries, and are not counted.
type store struct {
	shards []shard
	mask   uint64

	caps     [3]int64 // maximum entries per class
	maxBytes int64

	count [3]atomic.Int64
	bytes atomic.Int64
	next  atomic.Uint64 // where the next eviction starts sampling
	pool  evictPool
	slab  *slab
}

// recsPerChunk is the number of records in one slab block of records.
const recsPerChunk = 256

type shard struct {
	mu     sync.RWMutex
	closed bool

	// idx is the index: linear probing, a bucket is tag<<32 | slot+1, 0 when empty; tag is
	// the top half of hash*fib, whose top bits are the bucket the hash belongs in.
	idx    []uint64
	bits   uint8  // log2 len(idx)
	idxBig bool   // idx is a mapping of its own, not a slab block
	idxRef uint32 // idx's slab block
	n      int    // entries

	recs     []*[recsPerChunk]record
	freeSlot uint32 // first free slot + 1, 0 for none
	hwm      uint32 // slots handed out so far
	_        [24]byte
}

// newStore returns a store with n shards, n a power of two. It maps no memory until the
// first entry is stored.
func newStore(n int, caps [3]int64, maxBytes int64) *store {
	return &store{shards: make([]shard, n), mask: uint64(n - 1), caps: caps, maxBytes: maxBytes, slab: newSlab()}
}

func (s *store) shard(h uint64) *shard { return &s.shards[(h>>32^h)&s.mask] }

func (sh *shard) rec(slot uint32) *record { return &sh.recs[slot/recsPerChunk][slot%recsPerChunk] }

// payload returns the payload block of r.
func (s *store) payload(r *record) []byte { return s.slab.block(r.block, r.payloadLen()) }

// newSlot returns a free slot of sh. sh is write-locked.
func (s *store) newSlot(sh *shard) (uint32, bool) {
	if sh.freeSlot != 0 {
		slot := sh.freeSlot - 1
		sh.freeSlot = sh.rec(slot).block
		return slot, true
	}
	if int(sh.hwm) == len(sh.recs)*recsPerChunk {
		// A block of a size that is a multiple of a cache line starts on one (slab.carve).
		_, mem, ok := s.slab.alloc(recsPerChunk * recordSize)
		if !ok {
			return 0, false
		}
		clear(mem)
		sh.recs = append(sh.recs, (*[recsPerChunk]record)(unsafe.Pointer(&mem[0])))
	}
	sh.hwm++
	return sh.hwm - 1, true
}

// drop removes the entry in slot, indexed at bucket b. sh is write-locked.
func (s *store) drop(sh *shard, slot uint32, b int) {
	r := sh.rec(slot)
	n := r.payloadLen()
	s.slab.release(r.block, n)
	sh.unlink(b)
	sh.n--
	s.count[r.class].Add(-1)
	s.bytes.Add(-int64(blockSize(n) + recordSize))
	r.flags = 0
	r.gen++
	r.inflight.Store(false)
	r.block = sh.freeSlot
	sh.freeSlot = slot + 1
}

// popularity is an entry's request count and last request time.
type popularity struct {
	hits, lastHit int64
}

// replaced describes the entry a put replaced.
type replaced struct {
	ref
	popularity
	sameKey bool // it had the new entry's key, not just its hash
}

// put stores e, replacing what was stored under its hash, with e's popularity and origin,
// and sets e's slot and generation. It returns the entry it replaced, if any, and how many
// entries it evicted to stay within bounds; false when e could not be stored.
func (s *store) put(e *entry, now int64) (old replaced, evicted int, ok bool) {
	sh := s.shard(e.hash)
	sh.mu.Lock()
	ok = s.insertLocked(sh, e, &old)
	sh.mu.Unlock()
	if !ok {
		return old, 0, false
	}
	for i := 0; i < 64 && s.over(e.class); i++ {
		if !s.evict(e.ref, e.class, now) {
			break
		}
		evicted++
	}
	return old, evicted, true
}

// insertLocked stores e in sh, which is write-locked, and describes in old what it replaced.
func (s *store) insertLocked(sh *shard, e *entry, old *replaced) bool {
	if sh.closed {
		return false
	}
	n := len(e.msg) + len(e.ttls)
	if slot, b, found := sh.find(e.hash); found {
		r := sh.rec(slot)
		*old = replaced{ref: ref{e.hash, slot, r.gen},
			popularity: popularity{r.hits.Load(), r.lastHit.Load()},
			sameKey:    sameKey(r, s.payload(r), e)}
		s.drop(sh, slot, b)
	}
	if sh.growth() > 0 && !s.grow(sh) {
		return false
	}
	block, mem, ok := s.slab.alloc(n)
	if !ok {
		return false
	}
	slot, ok := s.newSlot(sh)
	if !ok {
		s.slab.release(block, n)
		return false
	}
	copy(mem, e.msg)
	copy(mem[len(e.msg):], e.ttls)
	r := sh.rec(slot)
	r.hash, r.stored, r.ttl = e.hash, e.stored, e.ttl
	r.hits.Store(e.hits)
	r.lastHit.Store(e.lastHit)
	r.origin.Store(e.origin)
	r.block = block
	r.msgLen, r.qEnd, r.nTTL = uint16(len(e.msg)), uint16(e.qEnd), uint16(len(e.ttls)/2) // #nosec G115 -- bounded in newEntry
	r.class, r.rcode = e.class, uint8(e.rcode)                                           // #nosec G115 -- NOERROR, NXDOMAIN or SERVFAIL (insert.go)
	r.flags = recLive
	if e.key.do {
		r.flags |= recDO
	}
	if e.key.cd {
		r.flags |= recCD
	}
	if e.ad {
		r.flags |= recAD
	}
	r.inflight.Store(false)
	_, b, _ := sh.find(e.hash)
	sh.idx[b] = uint64(uint32((e.hash*fib)>>32))<<32 | uint64(slot+1)
	sh.n++
	s.count[e.class].Add(1)
	s.bytes.Add(int64(blockSize(n) + recordSize))
	e.slot, e.gen = slot, r.gen
	return true
}

// sameKey reports whether the stored entry r, with payload p, has e's key.
func sameKey(r *record, p []byte, e *entry) bool {
	return r.qtype(p) == e.key.qtype && r.qclass(p) == e.key.qclass &&
		(r.flags&recDO != 0) == e.key.do && (r.flags&recCD != 0) == e.key.cd &&
		int(r.qEnd) == e.qEnd && foldEqual(p[wire.HeaderLen:r.qEnd-4], e.msg[wire.HeaderLen:e.qEnd-4])
}

// resolveRef returns the record of r and its index bucket, if r still names a stored
// entry. sh is locked.
func (sh *shard) resolveRef(r ref) (*record, int, bool) {
	if sh.closed || r.slot >= sh.hwm {
		return nil, 0, false
	}
	rec := sh.rec(r.slot)
	if rec.gen != r.gen || rec.flags&recLive == 0 || rec.hash != r.hash {
		return nil, 0, false
	}
	_, b, _ := sh.find(r.hash)
	return rec, b, true
}

// remove deletes the entry r names, if it is still stored.
func (s *store) remove(r ref) bool {
	return s.removeIf(r, func(*record) bool { return true })
}

// removeIf deletes the entry r names if it is still stored and ok says so.
func (s *store) removeIf(r ref, ok func(*record) bool) bool {
	sh := s.shard(r.hash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	rec, b, found := sh.resolveRef(r)
	if !found || !ok(rec) {
		return false
	}
	s.drop(sh, r.slot, b)
	return true
}

// get returns a copy of the entry stored under h, if any.
func (s *store) get(h uint64) *entry {
	sh := s.shard(h)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if sh.closed {
		return nil
	}
	slot, _, ok := sh.find(h)
	if !ok {
		return nil
	}
	return s.copyOut(sh, slot, new(entry), true)
}

// load returns a copy of the entry r names, if it is still stored. With claim, it marks
// the entry as being refreshed, and returns nil if it already was.
func (s *store) load(r ref, claim bool) *entry {
	sh := s.shard(r.hash)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	rec, _, ok := sh.resolveRef(r)
	if !ok || (claim && !rec.inflight.CompareAndSwap(false, true)) {
		return nil
	}
	return s.copyOut(sh, r.slot, new(entry), true)
}

// copyOut copies the entry in slot into e, reusing e's buffers, with its key name if
// name is set. sh is locked.
func (s *store) copyOut(sh *shard, slot uint32, e *entry, name bool) *entry {
	r := sh.rec(slot)
	p := s.payload(r)
	e.ref = ref{r.hash, slot, r.gen}
	e.msg = append(e.msg[:0], p[:r.msgLen]...)
	e.ttls = append(e.ttls[:0], p[r.msgLen:]...)
	e.qEnd, e.ad = int(r.qEnd), r.flags&recAD != 0
	e.class, e.rcode, e.stored, e.ttl = r.class, int(r.rcode), r.stored, r.ttl
	e.hits, e.lastHit, e.origin = r.hits.Load(), r.lastHit.Load(), r.origin.Load()
	e.key = key{qtype: r.qtype(p), qclass: r.qclass(p), do: r.flags&recDO != 0, cd: r.flags&recCD != 0}
	if name {
		e.key.name = qname(e.msg)
	}
	return e
}

// with runs f on the record r names, if it is still stored, under its shard's read lock.
// f may change only the record's atomic fields.
func (s *store) with(r ref, f func(*record)) bool {
	sh := s.shard(r.hash)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	rec, _, ok := sh.resolveRef(r)
	if ok {
		f(rec)
	}
	return ok
}

// touch records a request answered by the entry r names.
func (s *store) touch(r ref, now int64) {
	s.with(r, func(rec *record) { rec.touch(now) })
}

func (s *store) over(cl class) bool {
	return s.count[cl].Load() > s.caps[cl] || (s.maxBytes > 0 && s.bytes.Load() > s.maxBytes)
}

func (s *store) len() int64 { return s.count[0].Load() + s.count[1].Load() + s.count[2].Load() }

// each calls f for every entry, one shard at a time, under the shard's read lock, with
// the entry's ref, record and payload. f must not use the store, and may change only the
// record's atomic fields.
func (s *store) each(f func(ref, *record, []byte)) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		if !sh.closed {
			for _, v := range sh.idx {
				if v == 0 {
					continue
				}
				slot := uint32(v) - 1
				r := sh.rec(slot)
				f(ref{r.hash, slot, r.gen}, r, s.payload(r))
			}
		}
		sh.mu.RUnlock()
	}
}

// close frees the store's memory. Every later use finds it empty and stores nothing.
func (s *store) close() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if !sh.closed {
			sh.closed = true
			if sh.idxBig {
				s.freeIndex(sh)
			}
			sh.idx, sh.recs, sh.n, sh.hwm, sh.freeSlot = nil, nil, 0, 0, 0
		}
		sh.mu.Unlock()
	}
	s.slab.close()
	for i := range s.count {
		s.count[i].Store(0)
	}
	s.bytes.Store(0)
}
