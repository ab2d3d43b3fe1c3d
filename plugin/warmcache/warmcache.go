// Package warmcache implements a DNS cache that keeps responses as packed bytes and a
// sweeper that refreshes popular entries before they expire.
//
// A hit copies the stored bytes and patches the ID, the question's letter case, the TTLs,
// the OPT record and the TC bit in place: it never unpacks or packs a message.
package warmcache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/dnsutil"
	clog "github.com/coredns/coredns/plugin/pkg/log"

	"github.com/miekg/dns"
)

var log = clog.NewWithPlugin("warmcache")

// WarmCache is the warmcache plugin.
type WarmCache struct {
	Next  plugin.Handler
	Zones []string

	pttl, minpttl time.Duration // success TTL clamps
	nttl, minnttl time.Duration // denial TTL clamps
	failttl       time.Duration // SERVFAIL TTL, 0 disables
	pcap, ncap    int
	maxBytes      int64
	shards        int

	prefetch   int           // requests that make an entry popular, 0 disables refreshes
	window     time.Duration // an entry asked nothing for this long loses its popularity
	percentage int           // refresh when this share of the TTL is left (or two sweeps, if longer)
	sweepEvery time.Duration
	refreshMax int // concurrent refreshes
	refreshPS  int // refreshes started per second

	staleUpTo time.Duration // serve_stale: how long past expiry an entry may be served, 0 disables
	staleWait time.Duration // how long a client waits for the upstream before getting a stale answer

	flushOnReload bool      // start empty on a reload instead of adopting the old instance's entries
	id            string    // the server block, across reloads (see lifecycle.go)
	inst          *instance // the caddy instance

	now func() time.Time

	store   *store
	flights flights
	metrics metricSet
	origins origins

	// How hits are written (compose.go): blockMode from the block's chain at startup, mode
	// once the whole Corefile is known. mode is rawNever until then.
	mode      atomic.Uint32
	blockMode rawMode
	blockWhy  string
	keys      []string // the server block's keys, for the log
	fd        frontDoor
	lbPlain   atomic.Bool // the block\'s loadbalance, if any, is round_robin (frontdoor.go)

	sem     chan struct{}
	wg      sync.WaitGroup // refreshes in flight
	stop    chan struct{}
	done    chan struct{}
	started sync.Once
	stopped sync.Once
}

const (
	defaultCap      = 10000
	defaultMaxBytes = 64 << 20
	defaultShards   = 64
	udpSize         = 1232 // what our OPT advertises (DNS flag day 2020)
	staleTTL        = 30   // RFC 8767 §4: TTL of stale answers
)

// New returns a WarmCache with the default settings. The caller sets Next.
func New() *WarmCache {
	c := &WarmCache{
		Zones:      []string{"."},
		pttl:       dnsutil.MaximumDefaultTTL,
		minpttl:    dnsutil.MinimalDefaultTTL,
		nttl:       dnsutil.MaximumDefaultTTL / 2,
		minnttl:    dnsutil.MinimalDefaultTTL,
		failttl:    dnsutil.MinimalDefaultTTL,
		pcap:       defaultCap,
		ncap:       defaultCap,
		maxBytes:   defaultMaxBytes,
		shards:     defaultShards,
		prefetch:   2,
		window:     time.Minute,
		percentage: 10,
		sweepEvery: time.Second,
		refreshMax: 32,
		refreshPS:  500,
		staleWait:  1800 * time.Millisecond, // RFC 8767 §5: client response timer
		now:        time.Now,
		fd:         frontDoor{on: true},
	}
	c.init()
	return c
}

// init (re)builds the store and limits from the settings.
func (c *WarmCache) init() {
	c.store = newStore(c.shards, [3]int64{int64(c.pcap), int64(c.ncap), int64(c.ncap)}, c.maxBytes)
	c.sem = make(chan struct{}, c.refreshMax)
}

// Name implements the plugin.Handler interface.
func (c *WarmCache) Name() string { return "warmcache" }

// ServeDNS implements the plugin.Handler interface.
func (c *WarmCache) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 || r.Response {
		return c.next(ctx, w, r)
	}
	q := &r.Question[0]
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR || !c.inZones(q.Name) {
		return c.next(ctx, w, r)
	}
	opt := r.IsEdns0()
	do := opt != nil && opt.Do()
	cd := r.CheckingDisabled
	h := hashKey(q.Name, q.Qtype, q.Qclass, do, cd)
	m := c.metrics.get(metrics.WithServer(ctx))

	p := probe{name: q.Name, qtype: q.Qtype, qclass: q.Qclass, do: do, cd: cd, now: c.now().UnixNano(),
		raw: c.rawModeFor(ctx), req: r, opt: opt, staleFor: int64(c.staleUpTo / time.Second)}
	if p.raw != rawNever {
		p.rt, p.limit = newReplyTo(r, opt), sizeLimit(w, opt)
	}
	buf := c.store.lookup(h, &p, nil)
	switch {
	case p.found && p.rem > 0:
		c.remember(ctx, p.ref, p.origin)
		m.hits.Inc()
		if p.rendered {
			w.Write(buf)
			return dns.RcodeSuccess, nil
		}
		if p.err == nil {
			w.WriteMsg(p.reply)
		}
		return dns.RcodeSuccess, nil
	case p.stale != nil:
		return c.serveStale(ctx, w, r, opt, p.stale, m)
	}
	m.misses.Inc()
	var hits int64
	if p.found {
		hits = p.hits
	}
	return c.miss(ctx, w, r, opt, h, m, hits)
}

func (c *WarmCache) inZones(name string) bool {
	if len(c.Zones) == 1 && c.Zones[0] == "." {
		return true
	}
	return plugin.Zones(c.Zones).Matches(name) != ""
}

// servesStale reports whether an entry of class cl rem seconds past its TTL may be served
// stale.
func (c *WarmCache) servesStale(cl class, rem int64) bool {
	return c.staleUpTo > 0 && cl != classFailure && -rem < int64(c.staleUpTo/time.Second)
}
