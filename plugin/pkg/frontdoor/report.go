package frontdoor

import (
	"sync"
	"sync/atomic"
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
// One Reporter serves one listener: its server label and protocol are fixed.
type Reporter struct {
	// Server and Proto are the server and proto labels ("dns://:53", "udp").
	Server, Proto string
	// Zones returns the prometheus plugin's zones (its ZoneNames).
	Zones func() []string
	// Plugin is the plugin label of responses_total: the plugin after prometheus.
	Plugin string
	// Scrubbed reports whether the chain writes a hit with rcode rc with WriteMsg: the
	// prometheus recorder then measures the message before the server's ScrubWriter adds
	// the OPT record, and its response size leaves the OPT out. nil: never.
	Scrubbed func(rc int) bool

	// root holds the children of the root zone (the only zone of a block for "."), by
	// type label, family and rcode: a hit there looks up no map.
	root [rootTypes * 2 * 16]atomic.Pointer[children]
	mu   sync.RWMutex
	m    map[series]*children
}

// optLen is the length of the OPT record of a hit's reply: root name, type, class, TTL and
// an empty RDATA (RFC 6891 §6.1.2).
const optLen = 11

type series struct {
	zone  string
	fam   int
	qtype uint16
	rcode int
}

type children struct {
	requests, do, responses prometheus.Counter
	duration, reqSize, size prometheus.Observer
}

// Hit counts the reply of size bytes with rcode rc to the query msg (parsed as q), which
// took dur.
func (r *Reporter) Hit(q *wire.Query, msg []byte, fam, size, rc int, dur time.Duration) {
	var t tally
	t.add(r, q, msg, fam, size, rc)
	t.flush(dur.Seconds())
}

// children returns the children of the series of a hit.
func (r *Reporter) children(q *wire.Query, msg []byte, fam, rc int) *children {
	zone := "."
	if zs := r.Zones(); len(zs) > 1 || len(zs) == 1 && zs[0] != "." {
		var nb [256]byte
		if z := plugin.Zones(zs).Matches(string(q.AppendName(nb[:0], msg))); z != "" {
			zone = z
		}
	} else if i := rootIndex(q.Qtype, fam, rc); i >= 0 {
		c := r.root[i].Load()
		if c == nil {
			c = r.resolve(series{zone: zone, fam: fam, qtype: q.Qtype, rcode: rc})
			r.root[i].Store(c)
		}
		return c
	}
	k := series{zone: zone, fam: fam, qtype: q.Qtype, rcode: rc}
	r.mu.RLock()
	c := r.m[k]
	r.mu.RUnlock()
	if c == nil {
		c = r.resolve(k)
		r.mu.Lock()
		if r.m == nil {
			r.m = make(map[series]*children)
		}
		if len(r.m) < 4096 {
			r.m[k] = c
		}
		r.mu.Unlock()
	}
	return c
}

func (r *Reporter) resolve(k series) *children {
	fam := "1"
	if k.fam == 2 {
		fam = "2"
	}
	const view = "" // a block with a view has no front door
	return &children{
		requests:  vars.RequestCount.WithLabelValues(r.Server, k.zone, view, r.Proto, fam, qTypeString(k.qtype)),
		do:        vars.RequestDo.WithLabelValues(r.Server, k.zone, view),
		duration:  vars.RequestDuration.WithLabelValues(r.Server, k.zone, view),
		size:      vars.ResponseSize.WithLabelValues(r.Server, k.zone, view, r.Proto),
		reqSize:   vars.RequestSize.WithLabelValues(r.Server, k.zone, view, r.Proto),
		responses: vars.ResponseRcode.WithLabelValues(r.Server, k.zone, view, rcode.ToString(k.rcode), r.Plugin),
	}
}

// tally is a batch of hits to count. A reader counts its batch (flush) before it sends the
// batch's replies, so a client that has its reply finds it counted, as it would find it
// counted by the prometheus plugin; hits of one series that follow each other add to its
// counters once.
type tally struct {
	pend []tallied
}

type tallied struct {
	c             *children
	size, reqSize int
	do            bool
}

// add adds a hit to t: the reply of size bytes with rcode rc to the query msg, parsed as q.
func (t *tally) add(r *Reporter, q *wire.Query, msg []byte, fam, size, rc int) {
	if q.EDNS && r.Scrubbed != nil && r.Scrubbed(rc) {
		size -= optLen
	}
	t.pend = append(t.pend, tallied{c: r.children(q, msg, fam, rc), size: size, reqSize: len(msg), do: q.DO})
}

// flush counts t's hits, each having taken dur seconds, and empties t.
func (t *tally) flush(dur float64) {
	p := t.pend
	for i := 0; i < len(p); {
		c, dos, j := p[i].c, 0, i
		for ; j < len(p) && p[j].c == c; j++ {
			if p[j].do {
				dos++
			}
			c.duration.Observe(dur)
			c.size.Observe(float64(p[j].size))
			c.reqSize.Observe(float64(p[j].reqSize))
		}
		if dos > 0 {
			c.do.Add(float64(dos))
		}
		c.requests.Add(float64(j - i))
		c.responses.Add(float64(j - i))
		i = j
	}
	clear(p)
	t.pend = p[:0]
}

// rootTypes is how many type labels vars gives requests_total: qTypeString's types and
// "other".
const rootTypes = 20

// rootIndex returns the place of a series of the root zone in Reporter.root, or -1 for an
// rcode past 15 or an unknown family.
func rootIndex(qtype uint16, fam, rc int) int {
	if rc < 0 || rc > 15 || fam < 1 || fam > 2 {
		return -1
	}
	return (typeIndex(qtype)*2+fam-1)*16 + rc
}

// typeIndex numbers qTypeString's labels: 0 for "other".
func typeIndex(t uint16) int {
	switch t {
	case dns.TypeA:
		return 1
	case dns.TypeAAAA:
		return 2
	case dns.TypeCNAME:
		return 3
	case dns.TypeDNSKEY:
		return 4
	case dns.TypeDS:
		return 5
	case dns.TypeMX:
		return 6
	case dns.TypeNSEC3:
		return 7
	case dns.TypeNSEC:
		return 8
	case dns.TypeNS:
		return 9
	case dns.TypePTR:
		return 10
	case dns.TypeRRSIG:
		return 11
	case dns.TypeSOA:
		return 12
	case dns.TypeSRV:
		return 13
	case dns.TypeTXT:
		return 14
	case dns.TypeHTTPS:
		return 15
	case dns.TypeSVCB:
		return 16
	case dns.TypeIXFR:
		return 17
	case dns.TypeAXFR:
		return 18
	case dns.TypeANY:
		return 19
	}
	return 0
}

// qTypeString is vars' qTypeString: the types it monitors by name, "other" for the rest.
func qTypeString(t uint16) string {
	if typeIndex(t) != 0 {
		return dns.Type(t).String()
	}
	return "other"
}
