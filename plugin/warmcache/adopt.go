package warmcache

import (
	"slices"
	"time"
)

// adopt copies into c the entries of old, the cache c replaces on a reload, that c's
// settings allow: in c's zones, not expired beyond what c serves stale, SERVFAIL only if c
// caches SERVFAIL, and a TTL no longer than c's maximum (a longer one is lowered; a
// shorter one is not raised to c's minimum). The hottest go first, until c's capacities
// are reached. An entry c already holds is replaced only
// by a newer one. Entries are shared, not copied: their stored time is absolute, so TTLs
// keep counting down, and a request to either cache counts for both. It returns how many
// entries c holds from old, and how many did not fit.
func (c *WarmCache) adopt(old *WarmCache) (kept, dropped int) {
	if c.flushOnReload || old.store == c.store {
		return 0, 0
	}
	now := c.now().UnixNano()
	var cs []candidate
	old.store.each(func(e *entry) {
		if !c.inZones(e.key.name) || (e.class == classFailure && c.failttl <= 0) {
			return
		}
		if rem := e.remaining(now); rem <= 0 && !c.servesStale(e, rem) {
			return
		}
		cs = append(cs, candidate{e, coldnessOf(e, now)})
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
	for _, cd := range cs {
		e := cd.e
		if ttl := c.maxTTL(e.class); e.ttl > ttl {
			e = e.withTTL(ttl)
		}
		if c.store.adopt(e) {
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

// withTTL returns a copy of e with TTL ttl and e's popularity.
func (e *entry) withTTL(ttl uint32) *entry {
	n := &entry{
		key: e.key, hash: e.hash,
		msg: e.msg, ttls: e.ttls, qEnd: e.qEnd, ad: e.ad,
		class: e.class, rcode: e.rcode, stored: e.stored, ttl: ttl, size: e.size,
	}
	n.hits.Store(e.hits.Load())
	n.lastHit.Store(e.lastHit.Load())
	return n
}

// adopt stores e, an entry of another store, unless an entry for its key that is at least
// as new is stored, or e does not fit: adopt never evicts. It reports false only when e
// does not fit. When both hold the key, the one kept gets the higher popularity.
func (s *store) adopt(e *entry) bool {
	sh := s.shard(e.hash)
	sh.mu.Lock()
	cur := sh.m[e.hash]
	switch {
	case cur == e:
		sh.mu.Unlock()
		return true
	case cur != nil && (cur.key != e.key || cur.stored >= e.stored):
		sh.mu.Unlock()
		if cur.key == e.key {
			mergePopularity(cur, e)
		}
		return true
	case cur == nil && (s.count[e.class].Load() >= s.caps[e.class] || (s.maxBytes > 0 && s.bytes.Load()+e.size > s.maxBytes)):
		sh.mu.Unlock()
		return false
	}
	sh.m[e.hash] = e
	sh.mu.Unlock()
	s.account(e, 1)
	if cur != nil {
		s.account(cur, -1)
		mergePopularity(e, cur)
	}
	return true
}

// mergePopularity raises the request count and last request time of dst to those of src.
func mergePopularity(dst, src *entry) {
	if h := src.hits.Load(); h > dst.hits.Load() {
		dst.hits.Store(h)
	}
	if l := src.lastHit.Load(); l > dst.lastHit.Load() {
		dst.lastHit.Store(l)
	}
}
