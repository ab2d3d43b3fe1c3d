package conformance

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// classes asks questions of classes other than IN, each twice (a miss and a hit): CH, HS,
// NONE, ANY and the unassigned class 42.
func (s *suite) classes(t *testing.T) {
	for _, c := range []struct {
		class uint16
		name  string
		qtype uint16
	}{
		{dns.ClassCHAOS, "version.bind.", dns.TypeTXT},
		{dns.ClassCHAOS, "id.server.", dns.TypeTXT},
		{dns.ClassCHAOS, "www.conf.test.", dns.TypeA},
		{dns.ClassHESIOD, "www.conf.test.", dns.TypeA},
		{dns.ClassNONE, "www.conf.test.", dns.TypeA},
		{dns.ClassANY, "www.conf.test.", dns.TypeA},
		{dns.ClassANY, "nope.conf.test.", dns.TypeA},
		{42, "www.conf.test.", dns.TypeA},
	} {
		cls := strings.ToLower(dns.Class(c.class).String())
		t.Run(cls+"/"+tag(c.name), func(t *testing.T) {
			for _, step := range []string{"miss", "hit"} {
				q := ask(with0x20(s.rnd, c.name), c.qtype)
				q.qclass = c.class
				s.check(t, "classes/"+cls+"/"+step, q, s.one(q))
			}
		})
	}
}

// ednsEdges sends EDNS edge cases (RFC 6891), each for a fresh name twice (a miss and a hit).
func (s *suite) ednsEdges(t *testing.T) {
	opt := func(m *dns.Msg) *dns.OPT {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		return o
	}
	for _, c := range []struct {
		name  string
		qtype uint16 // A when 0
		big   bool   // ask a name whose answer is larger than 1232 bytes
		edit  func(q *query)
	}{
		{"version1", 0, false, func(q *query) { q.version = 1 }},
		{"version1-do", 0, false, func(q *query) { q.version = 1; q.do = true }},
		{"version255", 0, false, func(q *query) { q.version = 255 }},
		{"unknown-option", 0, false, func(q *query) {
			q.opts = []dns.EDNS0{&dns.EDNS0_LOCAL{Code: 65001, Data: []byte("abc")}}
		}},
		{"do-size0", 0, false, func(q *query) { q.size = 0; q.do = true }},
		{"size0", 0, false, func(q *query) { q.size = 0 }},
		{"size100-big", 0, true, func(q *query) { q.size = 100 }},
		{"size512-big", 0, true, func(q *query) { q.size = 512 }},
		{"no-edns-big", 0, true, func(q *query) { q.edns = false }},
		{"no-edns-big-tcp", 0, true, func(q *query) { q.edns = false; q.tcp = true }},
		{"size65535-big", 0, true, func(q *query) { q.size = 65535 }},
		{"z-flags", 0, false, func(q *query) {
			q.mangle = func(m *dns.Msg) { m.IsEdns0().Hdr.Ttl |= 0x7fff }
		}},
		{"two-opt", 0, false, func(q *query) {
			q.mangle = func(m *dns.Msg) { m.Extra = append(m.Extra, opt(m)) }
		}},
		{"opt-in-answer", 0, false, func(q *query) {
			q.edns = false
			q.mangle = func(m *dns.Msg) { m.Answer = append(m.Answer, opt(m)) }
		}},
		{"opt-in-authority", 0, false, func(q *query) {
			q.edns = false
			q.mangle = func(m *dns.Msg) { m.Ns = append(m.Ns, opt(m)) }
		}},
		{"opt-owner-not-root", 0, false, func(q *query) {
			q.mangle = func(m *dns.Msg) { m.IsEdns0().Hdr.Name = "conf.test." }
		}},
		{"ad-no-do", 0, false, func(q *query) { q.ad = true }},
		{"cd-do", 0, false, func(q *query) { q.cd = true; q.do = true }},
		{"rd0", 0, false, func(q *query) { q.rd = false }},
	} {
		rnd := rand.New(rand.NewPCG(s.rnd.Uint64(), 0))
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // some references drop some of these: the wait for them overlaps
			zone := "wild.conf.test."
			qtype := dns.TypeA
			if c.big {
				zone, qtype = "bigwild.conf.test.", dns.TypeTXT
			}
			name := with0x20(rnd, "edns-"+c.name+"."+zone)
			for _, step := range []string{"miss", "hit"} {
				q := ask(name, qtype)
				c.edit(&q)
				s.check(t, "edns/"+c.name+"/"+step, q, s.one(q))
				name = flipCase(name)
			}
		})
	}
}

// burstVariant is a pair of requests for the same name, type and class that differ in one
// flag or property, sent concurrently so that a cache that coalesces misses sees them
// together.
type burstVariant struct {
	name string
	zone string // where fresh names for the "answer" kind live
	b    func(q *query)
	a    func(q *query) // changes to the base request for both sides, may be nil
}

var burstVariants = []burstVariant{
	{name: "do", b: func(q *query) { q.do = true }},
	{name: "cd", b: func(q *query) { q.cd = true }},
	{name: "ad", b: func(q *query) { q.ad = true }},
	{name: "rd", b: func(q *query) { q.rd = false }},
	{name: "edns", b: func(q *query) { q.edns = false }},
	{name: "size512", zone: "midwild", b: func(q *query) { q.size = 512 }},
	{name: "tcp", zone: "bigwild", b: func(q *query) { q.tcp = true }},
	{name: "nsid", b: func(q *query) { q.opts = []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}} }},
	{name: "cookie", b: func(q *query) {
		q.opts = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}}
	}},
	{name: "ecs", b: func(q *query) {
		q.opts = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24,
			Address: []byte{192, 0, 2, 0}}}
	}},
}

// Burst shape: perSide requests of each variant per resolver per round, at least minRounds
// rounds and at most maxRounds, stopping once warmcache reports coalesced misses.
const (
	perSide   = 4
	minRounds = 3
	maxRounds = 12
)

const coalescedMetric = "coredns_warmcache_coalesced_total"

// bursts sends, for each kind of reply (a cacheable answer, a cacheable NXDOMAIN, an
// uncacheable REFUSED) and each variant, rounds of concurrent requests for one fresh name
// to dnscache and to stock CoreDNS at once. Each dnscache reply must equal one of stock
// CoreDNS's replies to the same variant in the same round: stock CoreDNS does not coalesce,
// so its replies are what each request on its own gets.
func (s *suite) bursts(t *testing.T) {
	for _, kind := range []string{"answer", "nxdomain", "refused"} {
		for _, v := range burstVariants {
			t.Run(kind+"/"+v.name, func(t *testing.T) { s.burst(t, kind, v) })
		}
	}
}

func (s *suite) burst(t *testing.T, kind string, v burstVariant) {
	before := s.r.cache.Metric(t, coalescedMetric, nil)
	rounds := 0
	lost := false
	for rounds < maxRounds {
		rounds++
		label := fmt.Sprintf("b%d-%s-%s-%x", rounds, kind, v.name, s.rnd.Uint32())
		var name string
		qtype := dns.TypeA
		switch kind {
		case "answer":
			zone := "wild"
			if v.zone != "" {
				zone, qtype = v.zone, dns.TypeTXT
			}
			name = label + "." + zone + "." + zoneOrigin
		case "nxdomain":
			name = label + ".nx." + zoneOrigin
		case "refused":
			name = label + ".refused.example." // not served by NSD
		}
		base := ask(name, qtype)
		if v.a != nil {
			v.a(&base)
		}
		other := base
		v.b(&other)
		side := map[bool]query{false: base, true: other}

		type sent struct {
			who string
			b   bool
			res result
		}
		var (
			mu   sync.Mutex
			got  []sent
			wg   sync.WaitGroup
			gate = make(chan struct{})
		)
		for _, who := range []string{dnscache, stock} {
			for i := range 2 * perSide {
				b := i%2 == 1
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					id := uint16(0x1000 + i) // #nosec G115 -- small
					wire, qb, err := exchange(s.r.addr[who], side[b], id)
					res := reduce(wire, qb, err)
					for k, val := range res {
						res[k] = strings.ReplaceAll(val, label, "NAME")
					}
					mu.Lock()
					got = append(got, sent{who, b, res})
					mu.Unlock()
				}()
			}
		}
		close(gate)
		wg.Wait()

		for _, b := range []bool{false, true} {
			var refs []result
			for _, g := range got {
				if g.who == stock && g.b == b {
					refs = append(refs, g.res)
				}
			}
			for _, g := range got {
				if g.who != dnscache || g.b != b {
					continue
				}
				if g.res["error"] != "" {
					lost = true
				}
				best := refs[0]
				for _, r := range refs {
					if len(diff(g.res, r)) < len(diff(g.res, best)) {
						best = r
					}
				}
				sideName := map[bool]string{false: "base", true: v.name}[b]
				s.check(t, "bursts/"+kind+"/"+v.name+"/"+sideName, side[b], map[string]result{dnscache: g.res, stock: best})
			}
		}
		if rounds >= minRounds && s.r.cache.Metric(t, coalescedMetric, nil) > before {
			break
		}
	}
	if lost && os.Getenv("CONFORMANCE_DEBUG") != "" { // a request dnscache never answered
		fams := s.r.cache.Scrape(t)
		for name, f := range fams {
			if strings.Contains(name, "racetls") || strings.Contains(name, "warmcache") {
				for _, m := range f.GetMetric() {
					if v := m.GetCounter().GetValue() + m.GetGauge().GetValue(); v != 0 {
						t.Logf("%s %v %v", name, m.GetLabel(), v)
					}
				}
			}
		}
		t.Logf("log:\n%s", s.r.cache.Log())
	}
	t.Logf("%d rounds, %v misses coalesced by dnscache", rounds, s.r.cache.Metric(t, coalescedMetric, nil)-before)
}
