package unixsock

import (
	"slices"
	"time"

	"github.com/coredns/coredns/plugin/metrics"
	"github.com/dnscache/dnscache/plugin/pkg/frontdoor"
	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/prometheus/client_golang/prometheus"
)

// The front door on the socket (DESIGN §6.3, §7): a hit is found from the frame's bytes and
// written into the connection's write buffer by its reader, without a *dns.Msg or a
// goroutine. It is there when the socket serves one block, whose plugins above its cache are
// ones a hit may skip (frontdoor.Eligible), and whose cache has its front door on.

// cache is what the socket needs of warmcache.
type cache interface {
	frontdoor.Answerer
	FrontDoorOn() bool
	RoundRobin() bool
}

// door answers hits for one owner.
type door struct {
	cache           cache
	report          *frontdoor.Reporter
	hits, cacheHits prometheus.Counter
	label           string
	rotate          bool // loadbalance (round_robin) is in the chain
}

// prepareDoor decides whether u's socket answers hits in its readers; the chain must be built.
func (u *Unixsock) prepareDoor() {
	u.door, u.doorWhy = nil, ""
	if len(u.configs) == 0 {
		return
	}
	first := u.configs[0]
	wc, ok := first.Handler("warmcache").(cache)
	if !ok {
		u.doorWhy = "no warmcache"
		return
	}
	for _, cfg := range u.configs[1:] {
		if c, _ := cfg.Handler("warmcache").(cache); c != wc {
			u.doorWhy = "the socket routes between server blocks"
			return
		}
	}
	if !wc.FrontDoorOn() {
		u.doorWhy = "front_door off"
		return
	}
	if len(first.FilterFuncs) > 0 {
		u.doorWhy = "view"
		return
	}
	hs := first.Handlers()
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Name()
	}
	if ok, why := frontdoor.Eligible(names, "warmcache"); !ok {
		u.doorWhy = why
		return
	}
	d := &door{cache: wc, label: u.addr, hits: frontdoor.HitsCounter(u.addr), cacheHits: wc.HitsCounter(u.addr),
		rotate: slices.Contains(names, "loadbalance")}
	if h, ok := first.Handler("prometheus").(*metrics.Metrics); ok {
		d.report = &frontdoor.Reporter{Server: u.addr, Proto: "tcp", Zones: h.ZoneNames, Plugin: frontdoor.After(names, "prometheus")}
	}
	u.door = d
}

// hit appends to dst the reply from the cache to the query msg, if it has one. The socket's
// writer is TCP-like: no size limit, family 1, proto tcp (see writer).
func (d *door) hit(msg, dst []byte) ([]byte, bool) {
	start := d.cache.Now() // the cache's clock is time.Now but in tests
	if d.rotate && !d.cache.RoundRobin() {
		return nil, false // loadbalance's policy is not known to be round_robin (yet)
	}
	q, err := wire.ParseQuery(msg)
	if err != nil {
		return nil, false
	}
	reply, rcode, ok := d.cache.Answer(msg, q, false, dst, start.UnixNano())
	if !ok || (d.rotate && !frontdoor.Rotate(reply)) {
		return nil, false
	}
	if d.report != nil {
		d.report.Hit(&q, msg, 1, len(reply), rcode, time.Since(start))
	}
	d.hits.Inc()
	d.cacheHits.Inc()
	return reply, true
}
