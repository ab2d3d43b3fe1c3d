package warmcache

import (
	"slices"
	"time"
)

// adopt copies into c the entries of old, the cache c replaces on a reload, that c's
// settings allow: in c's zones, not expired beyond what c serves stale, SERVFAIL only if c
// caches SERVFAIL, and a TTL no longer than c's maximum (a longer one is lowered; a
// shorter one is not raised to c's minimum). The hottest go first, until c's capacities
// are reached. An entry c already holds is replaced only by a newer one; otherwise it
// takes the higher popularity of the two. The stored time is absolute, so TTLs keep
// counting down. It returns how many entries c holds from old, and how many did not fit.
func (c *WarmCache) adopt(old *WarmCache) (kept, dropped int) {
	if c.flushOnReload || old.store == c.store {
		return 0, 0
	}
	now := c.now().UnixNano()
	everywhere := len(c.Zones) == 1 && c.Zones[0] == "."
	var cs []candidate
	old.store.each(func(rf ref, r *record, p []byte) {
		if r.class == classFailure && c.failttl <= 0 {
			return
		}
		if rem := r.remaining(now); rem <= 0 && !c.servesStale(r.class, rem) {
			return
		}
		if !everywhere && !c.inZones(qname(p[:r.msgLen])) {
			return
		}
		cs = append(cs, candidate{rf, r.class, coldnessOf(r, now)})
	})
	slices.SortFunc(cs, func(a, b candidate) int { // hottest first
		switch {
		case b.colder(a.coldness):
			return -1
		case a.colder(b.coldness):
			return 1
		}
		return 0
	})
	var e entry // one buffer for every copy
	for _, cd := range cs {
		if !old.store.copy(cd.ref, &e) {
			continue // gone since
		}
		e.ttl = min(e.ttl, c.maxTTL(e.class))
		e.origin = 0 // an index into old's table of origins; c learns its own from requests
		if c.store.adopt(&e) {
			kept++
		} else {
			dropped++
		}
	}
	return kept, dropped
}

// maxTTL is c's longest TTL for an entry of class cl, in seconds.
func (c *WarmCache) maxTTL(cl class) uint32 {
	d := c.pttl
	switch cl {
	case classDenial:
		d = c.nttl
	case classFailure:
		d = min(c.failttl, 5*time.Minute)
	}
	return uint32(d / time.Second) // #nosec G115 -- TTLs are validated at setup.
}

// copy copies the entry r names into e, reusing e's buffers, without its key name.
func (s *store) copy(r ref, e *entry) bool {
	sh := s.shard(r.hash)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if _, _, ok := sh.resolveRef(r); !ok {
		return false
	}
	s.copyOut(sh, r.slot, e, false)
	return true
}

// adopt stores e, a copy of an entry of another store, unless an entry for its key that is
// at least as new is stored, or e does not fit: adopt never evicts. It reports false only
// when e does not fit. When both hold the key, the one kept gets the higher popularity.
func (s *store) adopt(e *entry) bool {
	sh := s.shard(e.hash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return false
	}
	slot, _, found := sh.find(e.hash)
	if found {
		cur := sh.rec(slot)
		if !sameKey(cur, s.payload(cur), e) {
			return true
		}
		if cur.stored >= e.stored {
			raise(cur, e.hits, e.lastHit)
			return true
		}
		e.hits, e.lastHit = max(e.hits, cur.hits.Load()), max(e.lastHit, cur.lastHit.Load())
	} else if s.count[e.class].Load() >= s.caps[e.class] || (s.maxBytes > 0 && s.bytes.Load()+e.size()+sh.growth() > s.maxBytes) {
		return false
	}
	var old replaced
	return s.insertLocked(sh, e, &old)
}

// raise raises the request count and last request time of r to hits and lastHit.
func raise(r *record, hits, lastHit int64) {
	if hits > r.hits.Load() {
		r.hits.Store(hits)
	}
	if lastHit > r.lastHit.Load() {
		r.lastHit.Store(lastHit)
	}
}
