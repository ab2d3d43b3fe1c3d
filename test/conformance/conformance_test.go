package conformance

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// suite runs cases against the rig and keeps the report.
type suite struct {
	r      *rig
	rnd    *rand.Rand
	mu     sync.Mutex
	cases  int               // queries compared (each sent to every resolver)
	refs   map[string]int    // "unbound: field" -> cases where a reference differs from stock
	refEx  map[string]string // first example of each
	used   map[int]int       // justification index -> times used
	failed map[string]int    // reported differences, to report each once
}

func TestConformance(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CONFORMANCE_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("0x20 case seed %d (CONFORMANCE_SEED=%d reproduces it)", seed, seed)
	s := &suite{r: startRig(t), rnd: rand.New(rand.NewPCG(seed, 11)),
		refs: map[string]int{}, refEx: map[string]string{}, used: map[int]int{}, failed: map[string]int{}}

	t.Run("misshit", s.missHit)
	t.Run("classes", s.classes)
	t.Run("edns", s.ednsEdges)
	t.Run("bursts", s.bursts)

	t.Logf("%d queries compared across %d resolvers", s.cases, len(resolvers))
	var keys []string
	for k := range s.refs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("reference differs from stock CoreDNS: %s in %d queries, e.g. %s", k, s.refs[k], s.refEx[k])
	}
	for i, j := range justified {
		t.Logf("justified difference %q/%s used %d times: %s", j.cases, j.field, s.used[i], j.why)
	}
}

// one sends q to every resolver at once and returns their results.
func (s *suite) one(q query) map[string]result {
	out := make(map[string]result, len(resolvers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range resolvers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := uint16(rand.Uint32()) // #nosec G404 G115 -- a message ID
			wire, qb, err := exchange(s.r.addr[name], q, id)
			res := reduce(wire, qb, err)
			mu.Lock()
			out[name] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// check compares dnscache with stock CoreDNS for one query of a case: each difference fails
// the test unless the table of justified differences covers it. Where unbound or Knot
// Resolver differ from stock CoreDNS, the report counts it.
func (s *suite) check(t *testing.T, cas string, q query, res map[string]result) {
	t.Helper()
	s.mu.Lock()
	s.cases++
	for _, ref := range []string{unbound, kresd} {
		if res[ref] == nil {
			continue
		}
		for _, f := range diff(res[ref], res[stock]) {
			k := ref + ": " + f
			if s.refs[k] == 0 {
				s.refEx[k] = fmt.Sprintf("%s [%s]: %s=%q, stock %q", cas, q, f, short(res[ref][f]), short(res[stock][f]))
			}
			s.refs[k]++
		}
	}
	s.mu.Unlock()
	for _, f := range diff(res[dnscache], res[stock]) {
		if i := justify(cas, f, res); i >= 0 {
			s.mu.Lock()
			s.used[i]++
			s.mu.Unlock()
			continue
		}
		var others []string
		for _, ref := range []string{unbound, kresd} {
			if res[ref] != nil {
				others = append(others, fmt.Sprintf("%s %q", ref, short(res[ref][f])))
			}
		}
		k := cas + "\x00" + f + "\x00" + res[dnscache][f] + "\x00" + res[stock][f]
		s.mu.Lock()
		s.failed[k]++
		n := s.failed[k]
		s.mu.Unlock()
		if n > 1 {
			continue // reported once
		}
		t.Errorf("%s [%s]: %s: dnscache %q, stock CoreDNS %q (%s)", cas, q, f, short(res[dnscache][f]), short(res[stock][f]), strings.Join(others, ", "))
	}
}

// missHit asks each zone name twice, a miss and then a hit, each time in another random 0x20
// case, over UDP and over TCP.
func (s *suite) missHit(t *testing.T) {
	for _, n := range askNames() {
		t.Run(tag(n.name)+"/"+n.qtype, func(t *testing.T) { s.missHitOne(t, n.name, n.qtype) })
	}
}

func (s *suite) missHitOne(t *testing.T, name, qtype string) {
	n := struct{ name, qtype string }{name, qtype}
	{
		for _, tcp := range []bool{false, true} {
			qt := dns.StringToType[n.qtype]
			for step, label := range []string{"miss", "hit"} {
				if tcp {
					label = "hit" // the UDP pass cached it
				}
				q := ask(with0x20(s.rnd, n.name), qt)
				if step == 1 {
					q.name = flipCase(q.name)
				}
				q.tcp = tcp
				cas := fmt.Sprintf("misshit/%s/%s/%s/%s", tag(n.name), n.qtype, label, map[bool]string{false: "udp", true: "tcp"}[tcp])
				s.check(t, cas, q, s.one(q))
			}
		}
	}
}

// justification is a difference between dnscache and stock CoreDNS that is not a bug.
type justification struct {
	cases string // prefix of the case names it covers
	field string
	when  func(res map[string]result) bool // nil: always
	why   string
}

// justified lists the differences between dnscache and stock CoreDNS that are not bugs: in
// each, dnscache does what unbound and Knot Resolver do and what the RFC asks, where stock
// CoreDNS shows an artefact of its implementation.
var justified = []justification{
	{cases: "", field: "flags", when: func(res map[string]result) bool {
		return strings.Contains(res[dnscache]["flags"], "cd") && strings.ReplaceAll(res[dnscache]["flags"], " cd", "") == res[stock]["flags"]
	}, why: "CD copied from the query into the reply of a miss (RFC 4035 §3.2.2), as stock CoreDNS does on a hit and " +
		"unbound and Knot Resolver always do; stock CoreDNS's miss passes NSD's header on, and NSD does not copy CD"},
}

func justify(cas, field string, res map[string]result) int {
	for i, j := range justified {
		if strings.HasPrefix(cas, j.cases) && j.field == field && (j.when == nil || j.when(res)) {
			return i
		}
	}
	return -1
}

// short cuts a long value for the report.
func short(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// tag names a subtest after a query name: the labels above the zone, escapes as '_'.
func tag(name string) string {
	name = strings.TrimSuffix(strings.TrimSuffix(name, zoneOrigin), otherOrigin)
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '\\':
			if i+1 < len(name) && name[i+1] >= '0' && name[i+1] <= '9' {
				i += 3
			} else {
				i++
			}
			b.WriteByte('_')
		case c == '.' || c == '-' || c == '_' || c == '*' || ('0' <= c && c <= '9') || ('a' <= c|0x20 && c|0x20 <= 'z'):
			b.WriteByte(c | 0x20*byte(btoi('A' <= c && c <= 'Z')))
		default:
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), ".")
	if len(out) > 24 {
		out = out[:24]
	}
	if out == "" {
		out = "apex"
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
