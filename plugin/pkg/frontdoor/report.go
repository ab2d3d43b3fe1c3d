package frontdoor

import (
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics/vars"
	"github.com/coredns/coredns/plugin/pkg/rcode"
	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Reporter counts a hit in the prometheus plugin's series exactly as vars.Report does
// for a reply that went through the chain, through children resolved once per label set.
type Reporter struct {
	// Zones returns the prometheus plugin's zones (its ZoneNames).
	Zones func() []string
	// Plugin is the plugin label of responses_total: the plugin after prometheus.
	Plugin string
	// Scrubbed reports whether the chain writes a hit with rcode rc with WriteMsg: the
	// prometheus recorder then measures the message before the server's ScrubWriter adds
	// the OPT record, and its response size leaves the OPT out. nil: never.
	Scrubbed func(rc int) bool

	mu sync.RWMutex
	m  map[series]*children
}

// optLen is the length of the OPT record of a hit's reply: root name, type, class, TTL and
// an empty RDATA (RFC 6891 §6.1.2).
const optLen = 11

type series struct {
	server, zone, proto string
	fam                 int
	qtype               uint16
	rcode               int
}

type children struct {
	requests, do, responses prometheus.Counter
	duration, reqSize, size prometheus.Observer
}

// Hit counts the reply of size bytes with rcode rc to the packed query msg.
func (r *Reporter) Hit(server string, msg []byte, fam int, proto string, size, rc int, start time.Time) {
	q, err := wire.ParseQuery(msg)
	if err != nil {
		return
	}
	zone := "."
	if zs := r.Zones(); len(zs) != 1 || zs[0] != "." {
		var nb [256]byte
		if z := plugin.Zones(zs).Matches(string(q.AppendName(nb[:0], msg))); z != "" {
			zone = z
		}
	}
	k := series{server: server, zone: zone, proto: proto, fam: fam, qtype: q.Qtype, rcode: rc}
	r.mu.RLock()
	c := r.m[k]
	r.mu.RUnlock()
	if c == nil {
		c = r.resolve(k)
	}
	if q.EDNS && r.Scrubbed != nil && r.Scrubbed(rc) {
		size -= optLen
	}
	if q.DO {
		c.do.Inc()
	}
	c.requests.Inc()
	c.duration.Observe(time.Since(start).Seconds())
	c.size.Observe(float64(size))
	c.reqSize.Observe(float64(len(msg)))
	c.responses.Inc()
}

func (r *Reporter) resolve(k series) *children {
	fam := "1"
	if k.fam == 2 {
		fam = "2"
	}
	const view = "" // a block with a view has no front door
	c := &children{
		requests:  vars.RequestCount.WithLabelValues(k.server, k.zone, view, k.proto, fam, qTypeString(k.qtype)),
		do:        vars.RequestDo.WithLabelValues(k.server, k.zone, view),
		duration:  vars.RequestDuration.WithLabelValues(k.server, k.zone, view),
		size:      vars.ResponseSize.WithLabelValues(k.server, k.zone, view, k.proto),
		reqSize:   vars.RequestSize.WithLabelValues(k.server, k.zone, view, k.proto),
		responses: vars.ResponseRcode.WithLabelValues(k.server, k.zone, view, rcode.ToString(k.rcode), r.Plugin),
	}
	r.mu.Lock()
	if r.m == nil {
		r.m = make(map[series]*children)
	}
	if len(r.m) < 4096 {
		r.m[k] = c
	}
	r.mu.Unlock()
	return c
}

// qTypeString is vars' qTypeString: the types it monitors by name, "other" for the rest.
func qTypeString(t uint16) string {
	switch t {
	case dns.TypeAAAA, dns.TypeA, dns.TypeCNAME, dns.TypeDNSKEY, dns.TypeDS, dns.TypeMX, dns.TypeNSEC3,
		dns.TypeNSEC, dns.TypeNS, dns.TypePTR, dns.TypeRRSIG, dns.TypeSOA, dns.TypeSRV, dns.TypeTXT,
		dns.TypeHTTPS, dns.TypeSVCB, dns.TypeIXFR, dns.TypeAXFR, dns.TypeANY:
		return dns.Type(t).String()
	}
	return "other"
}
