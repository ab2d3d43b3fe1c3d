package compose

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/dnscache/dnscache/test/lab"
	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
)

func compareReplies(t *testing.T, c *Case, phase int, runs [2]*run, qs []query) {
	t.Helper()
	n := c.norm(phase)
	var encoding []string // replies with the same records in other bytes
	defer func() {
		if len(encoding) > 0 {
			fail(t, c, fmt.Sprintf("%s: %d replies have the same records in other bytes, first %s", phaseName[phase], len(encoding), encoding[0]),
				"    "+strings.Join(encoding, "\n    "))
		}
	}()
	for i, tr := range runs[0].p.trs {
		for j, q := range qs {
			a, b := runs[0].replies[phase][i][j], runs[1].replies[phase][i][j]
			for k := range min(len(a), len(b)) {
				if a[k] == nil || b[k] == nil {
					continue
				}
				ka, ta := normMsg(a[k], n)
				kb, tb := normMsg(b[k], n)
				if ka != kb && !n.ttl && ttlsWithin(a[k], b[k], n, 1) {
					// Same but for TTLs a second apart: records that came from a cache
					// (a pkg/upstream re-entry, say) are as old as each process's clock
					// says when it asked, and the two processes ask one after the other.
					kb = ka
				}
				if ka != kb {
					if d := lineDiff(ta, tb); d != "" {
						fail(t, c, fmt.Sprintf("%s %s %q: reply differs: %s", phaseName[phase], tr.name, q.text, firstDiff(d)),
							fmt.Sprintf("  %s (-) vs %s (+):\n%s", runs[0].p.v.name, runs[1].p.v.name, d))
					} else {
						encoding = append(encoding, fmt.Sprintf("%s %q: %s", tr.name, q.text, byteDiff(a[k], b[k])))
					}
					break
				}
				if phase > 1 {
					for _, r := range runs {
						if msg := ttlNotAbove(r.replies[phase][i][j][k], runs[0].replies[1][i][j], runs[1].replies[1][i][j]); msg != "" {
							fail(t, c, fmt.Sprintf("%s %s %q: %s: %s", phaseName[phase], tr.name, q.text, r.p.v.name, msg), "")
						}
					}
				}
			}
		}
	}
}

// ttlNotAbove checks that no record of reply has a TTL above the same record's in the replies
// of the first phase.
func ttlNotAbove(reply []byte, firsts ...[][]byte) string {
	orig := map[string]uint32{}
	for _, f := range firsts {
		for _, b := range f {
			m := new(dns.Msg)
			if m.Unpack(b) != nil {
				continue
			}
			for _, rr := range append(append(m.Answer, m.Ns...), m.Extra...) {
				k := rrKey(rr)
				orig[k] = max(orig[k], rr.Header().Ttl)
			}
		}
	}
	m := new(dns.Msg)
	if m.Unpack(reply) != nil {
		return ""
	}
	for _, rr := range append(append(m.Answer, m.Ns...), m.Extra...) {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		if o, ok := orig[rrKey(rr)]; ok && rr.Header().Ttl > o {
			return fmt.Sprintf("TTL %d above the first answer's %d: %s", rr.Header().Ttl, o, rr)
		}
	}
	return ""
}

func compareMetrics(t *testing.T, c *Case, phase int, runs [2]*run) {
	t.Helper()
	var d [2][]string
	for i, r := range runs {
		for k, v := range r.metrics[phase] {
			if delta := v - r.metrics[phase-1][k]; delta != 0 {
				d[i] = append(d[i], fmt.Sprintf("%s +%v", k, delta))
			}
		}
	}
	a, b := multisetDiff(d[0], d[1])
	if len(a)+len(b) > 0 {
		sort.Strings(a)
		sort.Strings(b)
		fail(t, c, fmt.Sprintf("%s: /metrics deltas differ: %s", phaseName[phase], firstOf(a, b)), setDiffText(runs, a, b))
	}
}

func compareLogs(t *testing.T, c *Case, phase int, runs [2]*run) {
	t.Helper()
	if !runs[0].usesLog {
		return
	}
	for i, tr := range runs[0].p.trs {
		var lines [2][]string
		for v, r := range runs {
			all := r.logLines(r.p.trs[i])
			lines[v] = all[r.logs[phase-1][i]:r.logs[phase][i]]
		}
		a, b := multisetDiff(lines[0], lines[1])
		if len(a)+len(b) > 0 {
			fail(t, c, fmt.Sprintf("%s %s: log lines differ: %s", phaseName[phase], tr.name, firstOf(a, b)), setDiffText(runs, a, b))
		}
	}
}

func compareTaps(t *testing.T, c *Case, phase int, runs [2]*run, up *lab.Upstream) {
	t.Helper()
	if !runs[0].usesTap {
		return
	}
	for i, tr := range runs[0].p.trs {
		var msgs [2][]string
		var texts [2]map[string]string
		for v, r := range runs {
			texts[v] = map[string]string{}
			all := r.p.trs[i].tap.Messages()
			for _, m := range all[r.taps[phase-1][i]:r.taps[phase][i]] {
				k, text := normTap(m, c.norm(phase), r.p, up)
				msgs[v] = append(msgs[v], k)
				texts[v][k] = text
			}
		}
		a, b := multisetDiff(msgs[0], msgs[1])
		if len(a)+len(b) > 0 {
			for x := range a {
				a[x] = texts[0][a[x]]
			}
			for x := range b {
				b[x] = texts[1][b[x]]
			}
			fail(t, c, fmt.Sprintf("%s %s: dnstap messages differ (%d vs %d): %s", phaseName[phase], tr.name, len(msgs[0]), len(msgs[1]), pairedFirst(a, b)), pairedDiff(runs, a, b))
		}
	}
}

// normTap renders a dnstap message without its times and the ports that change from run to
// run: the lab's port and the transport's are named, others dropped.
func normTap(d *dnstap.Dnstap, n norm, p *proc, up *lab.Upstream) (key, text string) {
	m := d.GetMessage()
	_, labPort, _ := strings.Cut(up.TLSAddr(), ":")
	port := func(n uint32) string {
		s := strconv.Itoa(int(n))
		if s == labPort {
			return "lab"
		}
		for _, tr := range p.trs {
			if tr.port == int(n) {
				return tr.name
			}
		}
		return "_"
	}
	q := "?"
	for _, b := range [][]byte{m.GetQueryMessage(), m.GetResponseMessage()} {
		var msg dns.Msg
		if msg.Unpack(b) == nil && len(msg.Question) > 0 {
			q = msg.Question[0].Name + " " + dns.Type(msg.Question[0].Qtype).String()
			break
		}
	}
	head := fmt.Sprintf("%s %s %s/%s query=%v:%s response=%v:%s zone=%x extra=%q id=%q ver=%q",
		m.GetType(), q, m.GetSocketFamily(), m.GetSocketProtocol(),
		netIP(m.GetQueryAddress()), port(m.GetQueryPort()), netIP(m.GetResponseAddress()), port(m.GetResponsePort()),
		m.GetQueryZone(), d.GetExtra(), d.GetIdentity(), d.GetVersion())
	key, text = head, head
	for _, b := range [][]byte{m.GetQueryMessage(), m.GetResponseMessage()} {
		if len(b) == 0 {
			continue
		}
		k, tx := normMsg(b, n)
		key += "\n" + k
		text += "\n" + tx
	}
	return key, text
}

func netIP(b []byte) string {
	switch len(b) {
	case 0:
		return ""
	case 4, 16:
		return net.IP(b).String()
	}
	return fmt.Sprintf("%x", b)
}

func compareNotes(t *testing.T, c *Case, runs [2]*run) {
	t.Helper()
	var notes [2][]string
	for i, r := range runs {
		for _, l := range strings.Split(r.p.s.Log(), "\n") {
			if strings.Contains(l, "[WARNING]") || strings.Contains(l, "[ERROR]") {
				notes[i] = append(notes[i], normNote(l, r.p.s.Dir))
			}
		}
	}
	a, b := multisetDiff(notes[0], notes[1])
	if len(a)+len(b) > 0 {
		fail(t, c, fmt.Sprintf("warnings and errors differ: %s", firstOf(a, b)), setDiffText(runs, a, b))
	}
}

func firstOf(a, b []string) string {
	first := func(s []string) string {
		if len(s) == 0 {
			return "(nothing)"
		}
		l, _, _ := strings.Cut(s[0], "\n")
		return fmt.Sprintf("%q", l)
	}
	return fmt.Sprintf("%d only with cache/forward, first %s; %d only with warmcache/racetls, first %s", len(a), first(a), len(b), first(b))
}

func setDiffText(runs [2]*run, a, b []string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "  only with %s:\n", runs[0].p.v.name)
	for _, x := range a {
		fmt.Fprintf(&s, "    - %s\n", x)
	}
	fmt.Fprintf(&s, "  only with %s:\n", runs[1].p.v.name)
	for _, x := range b {
		fmt.Fprintf(&s, "    + %s\n", x)
	}
	return s.String()
}

// checkRotation requires, for each process, transport and query asked more than once, more
// than one order of the answer section.
func checkRotation(t *testing.T, c *Case, runs [2]*run, qs []query) {
	t.Helper()
	for _, r := range runs {
		for i, tr := range r.p.trs {
			for j, q := range qs {
				if q.repeat < 2 {
					continue
				}
				orders := map[string]bool{}
				for phase := 1; phase <= 3; phase++ {
					for _, b := range r.replies[phase][i][j] {
						m := new(dns.Msg)
						if m.Unpack(b) != nil {
							continue
						}
						var o []string
						for _, rr := range m.Answer {
							o = append(o, rrKey(rr))
						}
						orders[strings.Join(o, "|")] = true
					}
				}
				if len(orders) < 2 {
					fail(t, c, fmt.Sprintf("%s %q: %s: no rotation over %d replies", tr.name, q.text, r.p.v.name, 3*q.repeat), "")
				}
			}
		}
	}
}

// pairs matches the texts of a and b by their first three words (dnstap type and question)
// and returns the pairs' line diffs, then what has no partner.
func pairs(a, b []string) (diffs []string, onlyA, onlyB []string) {
	head := func(s string) string {
		f := strings.Fields(s)
		if len(f) < 3 {
			return s
		}
		return strings.Join(f[:3], " ")
	}
	used := make([]bool, len(b))
	for _, x := range a {
		found := false
		for j, y := range b {
			if !used[j] && head(x) == head(y) {
				used[j], found = true, true
				diffs = append(diffs, head(x)+":\n"+lineDiff(x, y))
				break
			}
		}
		if !found {
			onlyA = append(onlyA, x)
		}
	}
	for j, y := range b {
		if !used[j] {
			onlyB = append(onlyB, y)
		}
	}
	return diffs, onlyA, onlyB
}

func pairedFirst(a, b []string) string {
	diffs, onlyA, onlyB := pairs(a, b)
	if len(diffs) > 0 {
		h, d, _ := strings.Cut(diffs[0], "\n")
		return fmt.Sprintf("%d differ, %d only with cache/forward, %d only with warmcache/racetls; first %s: %s", len(diffs), len(onlyA), len(onlyB), h, firstDiff(d))
	}
	return firstOf(onlyA, onlyB)
}

func pairedDiff(runs [2]*run, a, b []string) string {
	diffs, onlyA, onlyB := pairs(a, b)
	var s strings.Builder
	fmt.Fprintf(&s, "  %s (-) vs %s (+):\n", runs[0].p.v.name, runs[1].p.v.name)
	for _, d := range diffs {
		fmt.Fprintf(&s, "  %s", d)
	}
	if len(onlyA)+len(onlyB) > 0 {
		s.WriteString(setDiffText(runs, onlyA, onlyB))
	}
	return s.String()
}

// checkExpect checks the case's Expect against stock cache's first replies over UDP.
func checkExpect(t *testing.T, c *Case, r *run, qs []query) {
	t.Helper()
	for q, want := range c.Expect {
		found := false
		for j := range qs {
			if qs[j].text != q {
				continue
			}
			found = true
			m := new(dns.Msg)
			if rs := r.replies[1][0][j]; len(rs) == 0 || m.Unpack(rs[0]) != nil {
				t.Errorf("%s: %q: no reply from %s to check", c.plugin(), q, r.p.v.name)
				continue
			}
			if !strings.Contains(m.String(), want) {
				t.Errorf("%s: %q: %s's reply lacks %q: the case does not exercise the plugin\n%s", c.plugin(), q, r.p.v.name, want, m)
			}
		}
		if !found {
			t.Errorf("Expect names %q, which is not a query of the case", q)
		}
	}
}

// ttlsWithin reports whether wire messages a and b are equal but for TTLs that differ by
// at most d seconds, record by record.
func ttlsWithin(a, b []byte, n norm, d uint32) bool {
	n.ttl = true
	if ka, _ := normMsg(a, n); ka != func() string { kb, _ := normMsg(b, n); return kb }() {
		return false
	}
	ma, mb := new(dns.Msg), new(dns.Msg)
	if ma.Unpack(a) != nil || mb.Unpack(b) != nil {
		return false
	}
	ra := append(append(ma.Answer, ma.Ns...), ma.Extra...)
	rb := append(append(mb.Answer, mb.Ns...), mb.Extra...)
	if len(ra) != len(rb) {
		return false
	}
	for i := range ra {
		x, y := ra[i].Header().Ttl, rb[i].Header().Ttl
		if max(x, y)-min(x, y) > d {
			return false
		}
	}
	return true
}
