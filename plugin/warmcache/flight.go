package warmcache

import (
	"context"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metadata"
	"github.com/coredns/coredns/plugin/pkg/dnsutil"

	"github.com/miekg/dns"
)

// call is one query through the rest of the chain that any number of requests wait for.
type call struct {
	done  chan struct{}
	e     *entry   // the entry inserted from the response, if it was cacheable (a copy)
	old   replaced // the entry it replaced
	rcode int
	err   error
}

// flights coalesces misses: one call per key at a time.
type flights struct {
	mu sync.Mutex
	m  map[key]*call
}

// join returns the call in flight for k, or a new one and true when the caller must run it.
func (f *flights) join(k key) (*call, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.m[k]; ok {
		return c, false
	}
	if f.m == nil {
		f.m = make(map[key]*call)
	}
	c := &call{done: make(chan struct{})}
	f.m[k] = c
	return c, true
}

func (f *flights) finish(k key, c *call) {
	f.mu.Lock()
	delete(f.m, k)
	f.mu.Unlock()
	close(c.done)
}

// miss answers r through the rest of the chain. Requests for the same key that arrive
// while one is in flight wait for it and are answered from the entry it caches, as a hit
// a moment later would be; when its reply was not cached (truncated, REFUSED, a failure),
// each goes down the chain itself, as it would through cache, since that reply may depend
// on more than the key (the transport, the client's buffer size, its EDNS options). old
// is the popularity of the expired entry for r, if any: it carries over.
func (c *WarmCache) miss(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, opt *dns.OPT, h uint64, m *serverMetrics, old int64) (int, error) {
	q := r.Question[0]
	k := makeKey(q.Name, q.Qtype, q.Qclass, opt != nil && opt.Do(), r.CheckingDisabled)
	cl, leader := c.flights.join(k)
	if leader {
		hits := 1 + old
		cw := c.resolve(ctx, w, authenticated(r), k, h, cl, hits, c.now().UnixNano())
		return c.answer(w, r, opt, cl, cw.msg)
	}
	m.coalesced.Inc()
	select {
	case <-cl.done:
	case <-ctx.Done():
		return dns.RcodeServerFailure, ctx.Err()
	}
	e := cl.e
	if e == nil {
		// Down the chain alone, and answered as a leader is.
		cw := &captureWriter{ResponseWriter: w}
		own := &call{}
		own.rcode, own.err = c.next(ctx, cw, authenticated(r))
		if cw.msg != nil {
			own.e, _ = c.insert(k, h, cw.msg, c.now(), 1, c.now().UnixNano(), c.origins.of(ctx, w, r))
		}
		return c.answer(w, r, opt, own, cw.msg)
	}
	now := c.now().UnixNano()
	c.store.touch(e.ref, now)
	c.write(ctx, w, r, opt, e, uint32(max(e.remaining(now), 0))) // #nosec G115 -- 0 <= ttl <= e.ttl
	return dns.RcodeSuccess, nil
}

// resolve runs req through the rest of the chain for call cl and caches the response.
// w supplies the client's addresses and may be nil. hits and lastHit are the popularity
// the new entry starts with. It returns the writer that captured the response.
func (c *WarmCache) resolve(ctx context.Context, w dns.ResponseWriter, req *dns.Msg, k key, h uint64, cl *call, hits, lastHit int64) *captureWriter {
	defer c.flights.finish(k, cl)
	cw := &captureWriter{ResponseWriter: w}
	cl.rcode, cl.err = c.next(ctx, cw, req)
	now := c.now()
	switch {
	case cw.msg != nil:
		cl.e, cl.old = c.insert(k, h, cw.msg, now, hits, lastHit, c.origins.of(ctx, w, req))
	case !plugin.ClientWrite(cl.rcode) && ctx.Err() == nil && c.failttl > 0:
		// The chain failed without an answer (an upstream timeout, say). Remember that
		// briefly, so that clients retrying do not each wait for the upstream again. The
		// client gets the error itself, for the errors plugin to see.
		fail := new(dns.Msg)
		fail.SetRcode(req, dns.RcodeServerFailure)
		fail.RecursionAvailable = true
		c.insert(k, h, fail, now, hits, lastHit, 0)
	}
	return cw
}

// answer writes the reply the chain gave the leader of cl, res, to its client with
// WriteMsg, as cache does: without the upstream's OPT record (the server's writer makes
// one from the request's, request.SizeAndDo), every TTL set to the entry's (or to what
// cache would have cached it for), and AD only for a client that asked for it. Without a
// reply it returns what the chain returned.
func (c *WarmCache) answer(w dns.ResponseWriter, r *dns.Msg, opt *dns.OPT, cl *call, res *dns.Msg) (int, error) {
	if res == nil {
		return cl.rcode, cl.err
	}
	res = res.Copy()
	extra := res.Extra[:0]
	for _, rr := range res.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	res.Extra = extra
	ttl := uint32(dnsutil.MinimalDefaultTTL / time.Second)
	if e := cl.e; e != nil {
		ttl = e.ttl
	} else if _, d, ok := c.lifetime(res); ok && d > 0 {
		ttl = uint32(d / time.Second) // #nosec G115 -- clamped to the max TTL
	}
	setTTLs(res, ttl)
	if !(opt != nil && opt.Do()) && !r.AuthenticatedData {
		res.AuthenticatedData = false
	}
	w.WriteMsg(res)
	return cl.rcode, cl.err
}

// authenticated returns a copy of r with AD set, for the rest of the chain: an upstream
// then says whether it validated the answer (RFC 6840 §5.7), which the cache keeps for the
// clients that ask with DO or AD. cache asks the same way (authenticatedRefreshState).
func authenticated(r *dns.Msg) *dns.Msg {
	r = r.Copy()
	r.AuthenticatedData = true
	return r
}

// detach returns a context for work that outlives the request: the request's values
// (the server, for metrics) without its cancellation, and fresh metadata.
func detach(ctx context.Context) context.Context {
	return metadata.ContextWithMetadata(context.WithoutCancel(ctx))
}
