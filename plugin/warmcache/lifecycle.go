package warmcache

import (
	"sort"
	"strings"
	"sync"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
)

// A reload builds a new instance of every plugin while the old one still serves, and would
// start warmcache empty. So that it does not, caches live in a registry keyed by their server
// block, and a new cache adopts the entries of the cache it replaces:
//
//   - OnStartup of the new instance records the new cache as next in its block's slot and
//     copies the entries of the slot's current cache, which keeps serving and refreshing.
//   - OnShutdown of the old cache, which caddy runs once the new instance serves, stops the
//     old sweeper, waits for its refreshes, copies what the old cache learnt since, and only
//     then starts the new sweeper: the two never refresh at the same time. It also starts the
//     sweepers of new caches that replace none (a block the reload added).
//   - OnRestartFailed of the old caches forgets the next caches; their sweepers never ran.
//   - OnShutdown of a cache that nothing replaces (final shutdown, or its block left the
//     Corefile) frees its slot.
//
// A cache that starts while no cache of an earlier instance is registered (the first start,
// or a reload that adds warmcache to a Corefile without it) starts its sweeper at once: no
// old cache will.
var registry = struct {
	sync.Mutex
	m map[string]*slot
}{m: map[string]*slot{}}

// slot holds the cache serving a server block and, during a reload, the one that will.
type slot struct {
	cur, next *WarmCache
}

// instance is a token per caddy instance: caches of one Corefile share it.
type instance struct{ _ byte } // not zero-sized: distinct instances need distinct pointers

// instanceKey keys the token in the instance's storage.
type instanceKey struct{}

// instanceOf returns the token of c's instance.
func instanceOf(c *caddy.Controller) *instance {
	inst, _ := c.Get(instanceKey{}).(*instance)
	if inst == nil {
		inst = new(instance)
		c.Set(instanceKey{}, inst)
	}
	return inst
}

// identity names c's server block across reloads: its keys and listen addresses.
func identity(c *caddy.Controller) string {
	hosts := append([]string(nil), dnsserver.GetConfig(c).ListenHosts...)
	sort.Strings(hosts)
	return strings.Join(c.ServerBlockKeys, " ") + "|" + strings.Join(hosts, " ")
}

// onStartup registers c and adopts the entries of the cache it replaces.
func (c *WarmCache) onStartup() error {
	registry.Lock()
	running := false // an instance before ours has caches that will shut down
	for _, s := range registry.m {
		running = running || (s.cur != nil && s.cur.inst != c.inst)
	}
	s := registry.m[c.id]
	if s == nil {
		s = &slot{}
		registry.m[c.id] = s
	}
	old := s.cur
	if running {
		s.next = c
	} else {
		s.cur = c
	}
	registry.Unlock()

	if old != nil {
		if kept, dropped := c.adopt(old); kept+dropped > 0 {
			c.metrics.get(old.metrics.current().server).evictions.Add(float64(dropped))
			log.Infof("Kept %d entries across the reload, dropped %d over capacity", kept, dropped)
		}
	}
	if !running {
		c.start()
	}
	return nil
}

// onShutdown stops c and hands its entries and the refreshing to the cache replacing it.
func (c *WarmCache) onShutdown() error {
	var next, fresh []*WarmCache
	registry.Lock()
	for id, s := range registry.m {
		switch {
		case s.cur == c && s.next != nil:
			next = append(next, s.next)
			s.cur, s.next = s.next, nil
		case s.cur == c:
			delete(registry.m, id)
		case s.next == c:
			s.next = nil
			if s.cur == nil {
				delete(registry.m, id)
			}
		case s.cur == nil && s.next != nil:
			// A block the reload added: the reload has succeeded, since we are shut down.
			fresh = append(fresh, s.next)
			s.cur, s.next = s.next, nil
		}
	}
	registry.Unlock()

	c.handDoor()
	c.shutdown()
	for _, n := range next {
		n.adopt(c) // what c learnt while the new instance started
		n.start()
	}
	for _, n := range fresh {
		n.start()
	}
	// c's entries live outside the Go heap (slab.go): give them back. A request of the old
	// instance still in flight finds the store empty and goes down the chain.
	c.store.close()
	return nil
}

// onRestartFailed forgets the caches of the instance that failed to start.
func (c *WarmCache) onRestartFailed() error {
	forgetDoors()
	registry.Lock()
	defer registry.Unlock()
	for id, s := range registry.m {
		if s.next == nil {
			continue
		}
		s.next.store.close() // what it adopted; it never served
		s.next = nil
		if s.cur == nil {
			delete(registry.m, id)
		}
	}
	return nil
}
