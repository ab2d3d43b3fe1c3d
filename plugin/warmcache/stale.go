package warmcache

import (
	"context"
	"time"

	"github.com/miekg/dns"
)

// serveStale answers r, whose entry e has expired but may still be served (RFC 8767). It
// asks the upstream and waits for it at most staleWait (the client response timer of
// RFC 8767 §5): a fresh answer wins, and if the upstream fails or is too slow the client
// gets e with TTL 30 (§4) while the query goes on to refresh the cache.
func (c *WarmCache) serveStale(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, opt *dns.OPT, e *entry, m *serverMetrics) (int, error) {
	cl, leader := c.flights.join(e.key)
	if leader {
		req := authenticated(r)
		hits, last := e.hits, e.lastHit
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.resolve(detach(ctx), nil, req, e.key, e.hash, cl, hits, last)
		}()
	}
	t := time.NewTimer(c.staleWait)
	defer t.Stop()
	select {
	case <-cl.done:
		if e := cl.e; e != nil && e.class != classFailure {
			m.misses.Inc()
			now := c.now().UnixNano()
			c.write(ctx, w, r, opt, e, uint32(max(e.remaining(now), 0))) // #nosec G115 -- 0 <= ttl <= e.ttl
			return dns.RcodeSuccess, nil
		}
	case <-t.C:
	case <-ctx.Done():
	}
	m.hits.Inc()
	m.stale.Inc()
	c.write(ctx, w, r, opt, e, staleTTL)
	return dns.RcodeSuccess, nil
}
