package warmcache

import (
	"slices"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/miekg/dns"
)

// start runs the sweeper until shutdown. It does nothing after the first call.
func (c *WarmCache) start() {
	c.started.Do(c.run)
}

func (c *WarmCache) run() {
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(c.done)
		t := time.NewTicker(c.sweepEvery)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				c.sweep(c.now())
			}
		}
	}()
}

// shutdown stops the sweeper and waits for the refreshes in flight.
func (c *WarmCache) shutdown() {
	c.stopped.Do(func() {
		if c.stop != nil {
			close(c.stop)
			<-c.done
		}
	})
	c.wg.Wait()
}

// sweep does the housekeeping of one interval, off the request path: it refreshes popular
// entries that are about to expire, forgets the popularity of entries nobody asked for in
// a window, and prunes expired entries that are not popular. It returns how many refreshes
// it started.
func (c *WarmCache) sweep(now time.Time) int {
	n := now.UnixNano()
	m := c.metrics.current()
	type due struct {
		ref
		expires int64
	}
	var dues []due
	var prune []ref
	c.store.each(func(rf ref, r *record, _ []byte) {
		if n-r.lastHit.Load() > int64(c.window) {
			r.hits.Store(0)
		}
		popular := c.prefetch > 0 && r.class != classFailure && r.hits.Load() >= int64(c.prefetch)
		left := r.expires() - n
		switch {
		case popular && left <= c.lead(r.ttl) && !r.inflight.Load():
			dues = append(dues, due{rf, r.expires()})
		case !popular && left <= 0 && !c.servesStale(r.class, r.remaining(n)):
			prune = append(prune, rf)
		}
	})
	pruned := 0
	for _, rf := range prune {
		if c.store.remove(rf) {
			pruned++
		}
	}
	if pruned > 0 {
		m.pruned.Add(float64(pruned))
	}
	m.entries.Set(float64(c.store.len()))
	m.bytes.Set(float64(c.store.bytes.Load()))

	// Rate limit: the soonest to expire go first, at most refreshPS per second of interval.
	budget := max(1, int(float64(c.refreshPS)*c.sweepEvery.Seconds()))
	slices.SortFunc(dues, func(a, b due) int { return int(min(max(a.expires-b.expires, -1), 1)) })
	started := 0
	for _, d := range dues {
		if started == budget {
			break
		}
		select {
		case c.sem <- struct{}{}:
		default:
			return started // all refresh slots busy
		}
		e := c.store.load(d.ref, true)
		if e == nil {
			<-c.sem // gone, or already being refreshed
			continue
		}
		started++
		c.wg.Add(1)
		go func() {
			defer func() { <-c.sem; c.wg.Done() }()
			c.refresh(e, m)
		}()
	}
	return started
}

// lead returns how long before e expires a refresh is due: the configured share of its
// TTL, and at least one and a half sweep intervals, so that the sweep that finds it due
// still leaves half an interval for the upstream to answer.
func (c *WarmCache) lead(ttl uint32) int64 {
	return max(int64(ttl)*int64(time.Second)*int64(c.percentage)/100, int64(c.sweepEvery)*3/2)
}

// refresh queries the rest of the chain for e's key and replaces e with the answer, which
// inherits e's popularity. A failed refresh leaves e in place. e was claimed (store.load).
func (c *WarmCache) refresh(e *entry, m *serverMetrics) {
	defer c.store.with(e.ref, func(r *record) { r.inflight.Store(false) })
	cl, leader := c.flights.join(e.key)
	if !leader {
		<-cl.done // a client's miss is already asking; its answer refreshes the entry
		return
	}
	// The question as the request that filled the entry asked it, 0x20 case included, as
	// cache's prefetch re-asks a client's question.
	name := e.key.name
	if n, _, err := dns.UnpackDomainName(e.msg, wire.HeaderLen); err == nil {
		name = n
	}
	req := new(dns.Msg)
	req.SetQuestion(name, e.key.qtype)
	req.Question[0].Qclass = e.key.qclass
	req.CheckingDisabled = e.key.cd
	req.AuthenticatedData = true // as a miss asks (authenticated)
	ctx, w, org := c.origins.context(e.origin)
	switch {
	case org == nil:
		req.SetEdns0(udpSize, e.key.do)
	case org.edns || e.key.do:
		req.RecursionDesired = org.rd
		req.SetEdns0(max(org.size, dns.MinMsgSize), e.key.do)
	default:
		req.RecursionDesired = org.rd
	}
	hits := e.hits
	c.resolve(ctx, w, req, e.key, e.hash, cl, hits, e.lastHit)
	if cl.e == nil || cl.e.class == classFailure {
		// A refresh that failed leaves e and its origin in place.
		m.prefetchFailed.Inc()
		return
	}
	// Hits on e while the refresh was in flight count for the new entry too.
	if cl.old.ref == e.ref {
		c.store.with(cl.e.ref, func(r *record) {
			r.hits.Add(cl.old.hits - hits)
			if cl.old.lastHit > r.lastHit.Load() {
				r.lastHit.Store(cl.old.lastHit)
			}
		})
	}
	m.prefetchOK.Inc()
}
