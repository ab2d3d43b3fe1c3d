package warmcache

import (
	"sync"
	"sync/atomic"
)

// store is a sharded map of entries bounded by entries per class and by bytes. Lookups take
// one shard's read lock; the hit path never writes to the map.
type store struct {
	shards []shard
	mask   uint64

	caps     [3]int64 // maximum entries per class
	maxBytes int64

	count [3]atomic.Int64
	bytes atomic.Int64
	next  atomic.Uint64 // where the next eviction starts sampling
	pool  evictPool
}

type shard struct {
	mu sync.RWMutex
	m  map[uint64]*entry
	_  [40]byte // keep shards' locks on separate cache lines
}

// newStore returns a store with n shards, n a power of two.
func newStore(n int, caps [3]int64, maxBytes int64) *store {
	s := &store{shards: make([]shard, n), mask: uint64(n - 1), caps: caps, maxBytes: maxBytes}
	for i := range s.shards {
		s.shards[i].m = make(map[uint64]*entry)
	}
	return s
}

func (s *store) shard(h uint64) *shard { return &s.shards[(h>>32^h)&s.mask] }

// get returns the entry stored under h, if any.
func (s *store) get(h uint64) *entry {
	sh := s.shard(h)
	sh.mu.RLock()
	e := sh.m[h]
	sh.mu.RUnlock()
	return e
}

// put stores e, replacing what was stored under its hash, and returns the entry it replaced
// and how many entries it evicted to stay within bounds.
func (s *store) put(e *entry, now int64) (old *entry, evicted int) {
	sh := s.shard(e.hash)
	sh.mu.Lock()
	old = sh.m[e.hash]
	sh.m[e.hash] = e
	sh.mu.Unlock()
	s.account(e, 1)
	if old != nil {
		s.account(old, -1)
	}
	for i := 0; i < 64 && s.over(e.class); i++ {
		if !s.evict(e, now) {
			break
		}
		evicted++
	}
	return old, evicted
}

// remove deletes e if it is still the entry stored under its hash.
func (s *store) remove(e *entry) bool {
	sh := s.shard(e.hash)
	sh.mu.Lock()
	ok := sh.m[e.hash] == e
	if ok {
		delete(sh.m, e.hash)
	}
	sh.mu.Unlock()
	if ok {
		s.account(e, -1)
	}
	return ok
}

func (s *store) account(e *entry, sign int64) {
	s.count[e.class].Add(sign)
	s.bytes.Add(sign * e.size)
}

func (s *store) over(cl class) bool {
	return s.count[cl].Load() > s.caps[cl] || (s.maxBytes > 0 && s.bytes.Load() > s.maxBytes)
}

func (s *store) len() int64 { return s.count[0].Load() + s.count[1].Load() + s.count[2].Load() }

// each calls f for every entry, one shard at a time, without holding a lock while f runs.
func (s *store) each(f func(*entry)) {
	var buf []*entry
	for i := range s.shards {
		sh := &s.shards[i]
		buf = buf[:0]
		sh.mu.RLock()
		for _, e := range sh.m {
			buf = append(buf, e)
		}
		sh.mu.RUnlock()
		for _, e := range buf {
			f(e)
		}
	}
}
