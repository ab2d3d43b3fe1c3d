package warmcache

import "sync"

// Eviction samples a few entries per eviction, as Redis's approximated LRU does, and keeps
// the coldest candidates of recent samples in a small pool per class. Each eviction takes
// the coldest of the pool, so it chooses among the last few hundred sampled entries rather
// than among eight: a new entry that has had one request (hot names look exactly like cold
// ones until their second request) is only taken once it is about as old as the oldest
// entries, where sampling 8 took it with probability age^8 (1 in 500 hot names lost to a
// cold stream through 100k entries, see docs/reliability.md).
const (
	evictSample = 8  // entries sampled per eviction
	poolSize    = 16 // candidates kept per class
)

// evictPool holds candidates for eviction, coldest first, with the coldness each had when
// it was sampled. Candidates are weak: one that has been removed, replaced or asked for
// since it was sampled is dropped when it comes up.
type evictPool struct {
	mu sync.Mutex
	c  [3][poolSize]candidate
	n  [3]int
}

// candidate is an entry and its coldness when it was sampled.
type candidate struct {
	e *entry
	coldness
}

// coldness orders entries for eviction: expired first, then fewer requests, then the least
// recently asked.
type coldness struct {
	expired bool
	hits    int64
	lastHit int64
}

func coldnessOf(e *entry, now int64) coldness {
	return coldness{expired: e.expires() <= now, hits: e.hits.Load(), lastHit: e.lastHit.Load()}
}

func (a coldness) colder(b coldness) bool {
	if a.expired != b.expired {
		return a.expired
	}
	if a.hits != b.hits {
		return a.hits < b.hits
	}
	return a.lastHit < b.lastHit
}

// evict removes the coldest entry other than keep that eviction can find. When the entry
// count of keep's class is over its capacity only that class is considered, else (the byte
// bound) every class.
func (s *store) evict(keep *entry, now int64) bool {
	byClass := s.count[keep.class].Load() > s.caps[keep.class]
	p := &s.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 4 { // a pool of candidates that have all gone since is refilled and tried again
		s.sample(keep, byClass, now)
		for {
			c, ok := p.pop(keep.class, byClass)
			if !ok {
				break
			}
			if c.e == keep || c.e.hits.Load() != c.hits || c.e.lastHit.Load() != c.lastHit {
				continue // asked for since it was sampled: resampled later at its new coldness
			}
			if s.remove(c.e) {
				return true
			}
		}
	}
	return false
}

// sample adds up to evictSample entries of the next shard that has any to the pool.
func (s *store) sample(keep *entry, byClass bool, now int64) {
	p := &s.pool
	for range len(s.shards) {
		sh := &s.shards[s.next.Add(1)&s.mask]
		i := 0
		sh.mu.RLock()
		for _, e := range sh.m {
			if e == keep || (byClass && e.class != keep.class) {
				continue
			}
			p.add(e, now)
			if i++; i == evictSample {
				break
			}
		}
		sh.mu.RUnlock()
		if i > 0 {
			return
		}
	}
}

// add offers e to its class's pool; it goes in if the pool has room or e is colder than
// the warmest candidate.
func (p *evictPool) add(e *entry, now int64) {
	pool, n := &p.c[e.class], &p.n[e.class]
	c := candidate{e, coldnessOf(e, now)}
	if *n == poolSize && !c.colder(pool[poolSize-1].coldness) {
		return
	}
	for i := range *n {
		if pool[i].e == e {
			return
		}
	}
	if *n == poolSize {
		*n-- // the warmest candidate makes room
	}
	i := *n
	for ; i > 0 && c.colder(pool[i-1].coldness); i-- {
		pool[i] = pool[i-1]
	}
	pool[i] = c
	*n++
}

// pop removes and returns the coldest candidate of class cl or, when byClass is false, of
// any class.
func (p *evictPool) pop(cl class, byClass bool) (candidate, bool) {
	best := -1
	for k := range p.c {
		if (byClass && class(k) != cl) || p.n[k] == 0 {
			continue
		}
		if best < 0 || p.c[k][0].colder(p.c[best][0].coldness) {
			best = k
		}
	}
	if best < 0 {
		return candidate{}, false
	}
	pool := &p.c[best]
	c := pool[0]
	copy(pool[:], pool[1:p.n[best]])
	p.n[best]--
	pool[p.n[best]] = candidate{}
	return c, true
}
