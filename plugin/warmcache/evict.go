package warmcache

import (
	"math/rand/v2"
	"sync"
)

// Eviction samples a few entries per eviction, as Redis's approximated LRU does, and keeps
// the coldest candidates of recent samples in a small pool per class. Each eviction takes
// the coldest of the pool, so it chooses among the last few hundred sampled entries rather
// than among a sample: a new entry that has had one request (hot names look exactly like
// cold ones until their second request) is only taken once it is about as old as the
// oldest entries, where sampling 8 took it with probability age^8 (1 in 500 hot names lost
// to a cold stream through 100k entries, see docs/reliability.md). 24 draws per eviction
// rather than 8 make TestEvictionKeepsHotNames lose a hot name in about 1 run of 1000
// instead of 1 of 40, for about 150 ns more per eviction.
const (
	evictSample = 24 // entries sampled per eviction
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

// candidate is an entry, its class and its coldness when it was sampled.
type candidate struct {
	ref
	cl class
	coldness
}

// coldness orders entries for eviction: expired first, then fewer requests, then the least
// recently asked.
type coldness struct {
	expired bool
	hits    int64
	lastHit int64
}

func coldnessOf(r *record, now int64) coldness {
	return coldness{expired: r.expires() <= now, hits: r.hits.Load(), lastHit: r.lastHit.Load()}
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

// evict removes the coldest entry other than keep, of class cl, that eviction can find.
// When the entry count of class cl is over its capacity only that class is considered,
// else (the byte bound) every class.
func (s *store) evict(keep ref, cl class, now int64) bool {
	byClass := s.count[cl].Load() > s.caps[cl]
	p := &s.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 4 { // a pool of candidates that have all gone since is refilled and tried again
		s.sample(keep, cl, byClass, now)
		for {
			c, ok := p.pop(cl, byClass)
			if !ok {
				break
			}
			if c.ref == keep {
				continue
			}
			// One asked for since it was sampled is skipped: resampled later at its new coldness.
			if s.removeIf(c.ref, func(r *record) bool { return r.hits.Load() == c.hits && r.lastHit.Load() == c.lastHit }) {
				return true
			}
		}
	}
	return false
}

// sample adds up to evictSample entries of the next shard that has any to the pool, each
// one drawn at random from the shard's index. A draw that lands on an empty bucket is
// drawn again rather than moved to the next full one: in a table with linear probing the
// entry after a long run of empty buckets would be drawn far more often than the others,
// and evicted younger.
func (s *store) sample(keep ref, cl class, byClass bool, now int64) {
	p := &s.pool
	for range len(s.shards) {
		sh := &s.shards[s.next.Add(1)&s.mask]
		i := 0
		sh.mu.RLock()
		if n := len(sh.idx); sh.n > 0 && !sh.closed {
			for range evictSample * 8 {
				v := sh.idx[rand.IntN(n)]
				if v == 0 {
					continue
				}
				slot := uint32(v) - 1
				r := sh.rec(slot)
				rf := ref{r.hash, slot, r.gen}
				if rf == keep || (byClass && r.class != cl) {
					continue
				}
				p.add(candidate{rf, r.class, coldnessOf(r, now)})
				if i++; i == evictSample {
					break
				}
			}
		}
		sh.mu.RUnlock()
		if i > 0 {
			return
		}
	}
}

// add offers c to its class's pool; it goes in if the pool has room or c is colder than
// the warmest candidate.
func (p *evictPool) add(c candidate) {
	pool, n := &p.c[c.cl], &p.n[c.cl]
	if *n == poolSize && !c.colder(pool[poolSize-1].coldness) {
		return
	}
	for i := range *n {
		if pool[i].ref == c.ref {
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
