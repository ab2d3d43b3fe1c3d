package compose

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
)

// TTL is the TTL, in seconds, of the answers the cases serve: the lab's synthetic answers, and
// what zone files, hosts and templates should use. It is above both caches' minimum TTL (5 s).
const TTL = 6

// parallel is how many cases run at once. Cases spend most of their time waiting for TTLs.
const parallel = 8

// Case is one entry of the table: see the package doc.
type Case struct {
	Name      string            // "<plugin>/<what>": the plugin under test first
	Zone      string            // the main block's zones; "." when empty
	Plugins   string            // the main block's directives besides the suite's own
	Blocks    string            // further server blocks on the same port
	Files     map[string]string // files written into the server's directory
	Queries   []string          // dig-like: "NAME [TYPE] [CLASS] [+noedns] [+bufsize=N] [+do] [+cd] [+nord] [+repeat=N]"
	Marker    string            // the marker's name, %d the phase; default compose-marker-%d. and the first of Zone, or example.com.
	Shuffled  bool              // loadbalance: compare sections as sets, require rotation
	IPv6      bool              // clients ask over ::1 (the blocks bind it too)
	Refreshes int               // warmcache refreshes to wait for per transport; 0: one if any answer is cacheable with TTL <= TTL, -1: none
	Needs     string            // "kubernetes": needs the control plane
	// Expect maps a query to text that stock cache's first reply to it over UDP must hold
	// (in dig's format, TTLs as sent): proof that the plugin under test did its work, so
	// that the case cannot pass by both sides doing nothing.
	Expect map[string]string
	// FrontDoor: warmcache's front door (DESIGN §6.3) must answer hits of this case over UDP
	// and the socket (coredns_frontdoor_hits_total grows in the hit phase).
	FrontDoor bool

	frontDoorOff bool // the copy of the case with `front_door off` (see frontDoorCopies)
}

// frontDoorCopies returns cs followed by a copy of each with warmcache's front door off:
// every case runs twice, and both runs must match stock, so the front door changes no
// answer and no coredns_dns_* count (issue 12, deliverable 3).
func frontDoorCopies(cs []Case) []Case {
	out := append([]Case(nil), cs...)
	for _, c := range cs {
		c.Name = "front_door-off/" + c.Name
		c.FrontDoor, c.frontDoorOff = false, true
		out = append(out, c)
	}
	return out
}

// norm is what the comparisons of a phase ignore.
func (c *Case) norm(phase int) norm {
	return norm{ttl: phase > 1, sorted: c.Shuffled, serial: c.Needs == "kubernetes"}
}

func (c *Case) plugin() string {
	name, _, _ := strings.Cut(strings.TrimPrefix(c.Name, "front_door-off/"), "/")
	return name
}

type query struct {
	text   string
	msg    *dns.Msg
	repeat int
}

func parseQuery(s string) (query, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return query{}, fmt.Errorf("empty query")
	}
	q := query{text: s, repeat: 1}
	qtype, qclass := dns.TypeA, uint16(dns.ClassINET)
	edns, bufsize, do, cd, rd := true, uint16(1232), false, false, true
	for _, a := range f[1:] {
		up := strings.ToUpper(a)
		switch {
		case a == "+noedns":
			edns = false
		case strings.HasPrefix(a, "+bufsize="):
			n, err := strconv.Atoi(a[len("+bufsize="):])
			if err != nil {
				return q, err
			}
			bufsize = uint16(n)
		case a == "+do":
			do = true
		case a == "+cd":
			cd = true
		case a == "+nord":
			rd = false
		case strings.HasPrefix(a, "+repeat="):
			n, err := strconv.Atoi(a[len("+repeat="):])
			if err != nil {
				return q, err
			}
			q.repeat = n
		case dns.StringToType[up] != 0:
			qtype = dns.StringToType[up]
		case dns.StringToClass[up] != 0:
			qclass = dns.StringToClass[up]
		default:
			return q, fmt.Errorf("query %q: unknown %q", s, a)
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(f[0]), qtype)
	m.Question[0].Qclass = qclass
	m.RecursionDesired, m.CheckingDisabled = rd, cd
	if edns {
		m.SetEdns0(bufsize, do)
	}
	q.msg = m
	return q, nil
}

// summary collects one line per case for the end of the run.
var summary struct {
	sync.Mutex
	lines map[string][]string // differences, first line each; nil but present when it passed
}

func note(c *Case, line string) {
	summary.Lock()
	defer summary.Unlock()
	summary.lines[c.Name] = append(summary.lines[c.Name], line)
}

func notes(c *Case) int {
	summary.Lock()
	defer summary.Unlock()
	return len(summary.lines[c.Name])
}

func TestCompose(t *testing.T) {
	kit.CheckFDs(t)
	// The markers (see settle) have a positive answer, so that they show nothing but what
	// the chain does to any answer.
	markers := map[string][]dns.RR{}
	for _, zone := range []string{"example.com.", "v1.example.com."} {
		for phase := 1; phase <= 3; phase++ {
			name := fmt.Sprintf("compose-marker-%d.%s", phase, zone)
			rr, err := dns.NewRR(fmt.Sprintf("%s %d IN NAPTR 100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp.%s", name, TTL, zone))
			if err != nil {
				t.Fatal(err)
			}
			markers[name] = []dns.RR{rr}
		}
	}
	up := lab.StartTest(t, lab.Config{TTL: TTL, Records: markers})
	summary.lines = map[string][]string{}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	defer printSummary(t, &wg) // also when starting the control plane ends this goroutine
	cluster := &clusterFixture{ready: make(chan struct{})}
	all := frontDoorCopies(cases)
	cases = all // printSummary walks cases
	for i := range all {
		c := &all[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.Needs == "kubernetes" {
				<-cluster.ready
			}
			sem <- struct{}{}
			defer func() { <-sem }()
			// t.Run may be called from several goroutines at once; this runs the cases
			// concurrently whatever -parallel says, since they mostly wait for TTLs.
			t.Run(c.Name, func(t *testing.T) {
				summary.Lock()
				summary.lines[c.Name] = nil
				summary.Unlock()
				defer func() {
					switch {
					case t.Skipped():
						note(c, "SKIP")
					case t.Failed() && notes(c) == 0:
						note(c, "failed (see the test log)")
					}
				}()
				runCase(t, c, up, cluster)
			})
		}()
	}
	cluster.start(t)
}

// printSummary waits for the cases and logs one line per case.
func printSummary(t *testing.T, wg *sync.WaitGroup) {
	wg.Wait()
	// One line per case in the test log; with COMPOSE_SUMMARY=FILE, every distinct difference
	// of each case (the same one over several transports once) into FILE.
	var b, all strings.Builder
	transports := regexp.MustCompile(`^(miss|hit|refreshed) (udp|tcp|unix)\b`)
	for _, c := range cases {
		lines, ran := summary.lines[c.Name]
		var head string
		switch {
		case !ran:
			continue
		case len(lines) > 0 && lines[0] == "SKIP":
			head = fmt.Sprintf("SKIP %s\n", c.Name)
		case len(lines) == 0:
			head = fmt.Sprintf("PASS %s\n", c.Name)
		default:
			head = fmt.Sprintf("FAIL %s (%d differences): %s\n", c.Name, len(lines), lines[0])
		}
		b.WriteString(head)
		all.WriteString(head)
		seen := map[string]bool{}
		for _, l := range lines {
			if l == "SKIP" {
				continue
			}
			l = transports.ReplaceAllString(l, "$1 *")
			if !seen[l] {
				seen[l] = true
				fmt.Fprintf(&all, "    - %s\n", l)
			}
		}
	}
	t.Logf("composition suite, %d cases:\n%s", len(cases), b.String())
	if p := os.Getenv("COMPOSE_SUMMARY"); p != "" {
		os.WriteFile(p, []byte(all.String()), 0o644)
	}
}

// run holds what one process answered and recorded, phase by phase.
type run struct {
	p       *proc
	replies [4][][][][]byte // [phase][transport][query][repeat]
	metrics [4]map[string]float64
	logs    [4][]int // per transport: lines with the transport's tag so far
	taps    [4][]int // per transport: dnstap messages so far
	usesLog bool
	usesTap bool
}

var phaseName = [4]string{"", "miss", "hit", "refreshed"}

func runCase(t *testing.T, c *Case, up *lab.Upstream, cluster *clusterFixture) {
	kubeconfig := ""
	if c.Needs == "kubernetes" {
		if cluster.cp == nil {
			t.Fatal("the control plane did not start")
		}
		kubeconfig = cluster.cp.Kubeconfig
	}
	var qs []query
	for _, s := range c.Queries {
		q, err := parseQuery(s)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q)
	}
	markerName := c.Marker
	if markerName == "" {
		zone := strings.Fields(c.Zone + " .")[0]
		if zone == "." {
			zone = "example.com."
		}
		markerName = "compose-marker-%d." + dns.Fqdn(zone)
	}

	var runs [2]*run
	for i := range variants {
		p := startProc(t, c, &variants[i], up, kubeconfig)
		corefile, _ := os.ReadFile(p.s.Corefile)
		runs[i] = &run{p: p, usesLog: strings.Contains(string(corefile), "cmp-udp {remote}"),
			usesTap: strings.Contains(string(corefile), p.trs[0].tap.Path())}
	}
	for _, r := range runs {
		r.metrics[0] = r.counters(t)
		r.logs[0], r.taps[0] = make([]int, 3), make([]int, 3)
		if r.usesTap {
			waitFor(t, "dnstap connection of "+r.p.v.name, func() bool {
				for _, tr := range r.p.trs {
					if !tr.tap.Connected() {
						return false
					}
				}
				return true
			})
		}
	}

	var missDone time.Time
	for phase := 1; phase <= 3; phase++ {
		if phase == 3 {
			waitRefresh(t, c, runs, qs, missDone)
		}
		marker := query{text: fmt.Sprintf(markerName, phase) + " NAPTR"}
		marker.msg = new(dns.Msg)
		marker.msg.SetQuestion(dns.Fqdn(fmt.Sprintf(markerName, phase)), dns.TypeNAPTR)
		marker.repeat = 1
		pq := append(cloneQueries(qs), marker)
		for _, r := range runs {
			r.ask(t, c, phase, pq)
		}
		for _, r := range runs {
			r.settle(t, c, phase, marker.msg.Question[0].Name)
		}
		if phase == 1 {
			missDone = time.Now()
			checkExpect(t, c, runs[0], qs)
		}
		compareReplies(t, c, phase, runs, pq)
		compareMetrics(t, c, phase, runs)
		if phase == 2 && c.FrontDoor {
			checkFrontDoor(t, c, runs[1])
		}
		compareLogs(t, c, phase, runs)
		compareTaps(t, c, phase, runs, up)
	}
	if c.Shuffled {
		checkRotation(t, c, runs, qs)
	}
	compareNotes(t, c, runs)
}

func cloneQueries(qs []query) []query { return append([]query(nil), qs...) }

func fail(t *testing.T, c *Case, summaryLine, detail string) {
	t.Helper()
	note(c, summaryLine)
	t.Errorf("%s: %s\n%s", c.plugin(), summaryLine, detail)
}

// ask sends every query of a phase to every transport.
func (r *run) ask(t *testing.T, c *Case, phase int, qs []query) {
	t.Helper()
	r.replies[phase] = make([][][][]byte, len(r.p.trs))
	for i, tr := range r.p.trs {
		r.replies[phase][i] = make([][][]byte, len(qs))
		for j, q := range qs {
			for range q.repeat {
				m := q.msg.Copy()
				m.Id = dns.Id()
				wire, err := m.Pack()
				if err != nil {
					t.Fatal(err)
				}
				b, err := tr.exchange(wire)
				switch {
				case err != nil:
					fail(t, c, fmt.Sprintf("%s %s %q: no reply from %s", phaseName[phase], tr.name, q.text, r.p.v.name), err.Error())
				case len(b) < 2 || b[0] != wire[0] || b[1] != wire[1]:
					fail(t, c, fmt.Sprintf("%s %s %q: reply ID is not the query's (%s)", phaseName[phase], tr.name, q.text, r.p.v.name), fmt.Sprintf("%x", b))
				}
				r.replies[phase][i][j] = append(r.replies[phase][i][j], b)
			}
		}
	}
}

// settle waits until the marker query of the phase has reached /metrics, the log and dnstap,
// so that everything the phase caused has, and records the counts.
func (r *run) settle(t *testing.T, c *Case, phase int, marker string) {
	t.Helper()
	waitState(t, fmt.Sprintf("%s: marker %s on /metrics", r.p.v.name, marker), func() (bool, string) {
		fams := r.p.s.Scrape(t)
		seen := map[string]float64{}
		if f, ok := fams["coredns_dns_requests_total"]; ok {
			for _, m := range f.GetMetric() {
				var server, typ string
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "server":
						server = l.GetValue()
					case "type":
						typ = l.GetValue()
					}
				}
				if typ == "other" { // NAPTR is not one of the types counted by name
					seen[r.p.transportOf(server)] += m.GetCounter().GetValue()
				}
			}
		}
		for _, tr := range r.p.trs {
			if seen[tr.name] < float64(phase) {
				return false, fmt.Sprintf("NAPTR requests by transport: %v", seen)
			}
		}
		return true, ""
	})
	r.metrics[phase] = r.counters(t)
	r.logs[phase], r.taps[phase] = make([]int, 3), make([]int, 3)
	for i, tr := range r.p.trs {
		if r.usesLog {
			waitFor(t, fmt.Sprintf("%s: marker %s in the %s log", r.p.v.name, marker, tr.name), func() bool {
				for _, l := range r.logLines(tr) {
					if strings.Contains(strings.ToLower(l), strings.ToLower(marker)) {
						return true
					}
				}
				return false
			})
			r.logs[phase][i] = len(r.logLines(tr))
		}
		if r.usesTap {
			waitFor(t, fmt.Sprintf("%s: marker %s on %s's dnstap", r.p.v.name, marker, tr.name), func() bool { return tr.tap.Has(dnstap.Message_CLIENT_QUERY, marker) })
		}
	}
	if r.usesTap {
		// The marker's query is tapped when it arrives, its reply after it is written (the
		// plugin flushes every second). A chain that does not tap replies must not hang the
		// suite: once the queries are in, wait for the replies a while, and let the
		// comparison show what is missing.
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			all := true
			for _, tr := range r.p.trs {
				all = all && tr.tap.Has(dnstap.Message_CLIENT_RESPONSE, marker)
			}
			if all {
				break
			}
		}
		for i, tr := range r.p.trs {
			r.taps[phase][i] = len(tr.tap.Messages())
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitState(t, what, func() (bool, string) { return cond(), "" })
}

// waitState polls cond until it holds; it fails the test with cond's last state after 20 s.
func waitState(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s (%s)", what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// counters returns coredns_dns_requests_total and coredns_dns_responses_total, every series
// keyed by its labels with the server label mapped to the transport.
func (r *run) counters(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	fams := r.p.s.Scrape(t)
	for _, name := range []string{"coredns_dns_requests_total", "coredns_dns_responses_total"} {
		f, ok := fams[name]
		if !ok {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				switch l.GetName() {
				case "server":
					v = r.p.transportOf(v)
				case "plugin":
					// The plugin that wrote the reply: the only names that differ.
					v = strings.NewReplacer("warmcache", "cache", "racetls", "forward").Replace(v)
				}
				ls = append(ls, l.GetName()+"="+strconv.Quote(v))
			}
			sort.Strings(ls)
			out[name+"{"+strings.Join(ls, ",")+"}"] += m.GetCounter().GetValue()
		}
	}
	return out
}

func (r *run) logLines(tr *transport) []string {
	var out []string
	for _, l := range strings.Split(r.p.s.Log(), "\n") {
		if strings.Contains(l, " "+tr.tag()+" ") {
			out = append(out, normLog(l, r.p.s.Dir))
		}
	}
	return out
}

// waitRefresh waits until warmcache has refreshed the entries of the first phase and stock
// cache's entries have expired.
func waitRefresh(t *testing.T, c *Case, runs [2]*run, qs []query, missDone time.Time) {
	t.Helper()
	if c.Refreshes >= 0 {
		want := c.Refreshes
		if want == 0 {
			// Every popular entry is due at about the same time: one refresh per
			// copy says the sweeper has done its round.
			want = min(cachedQueries(runs[0], qs), 1)
		}
		w := runs[1]
		deadline := missDone.Add((TTL + 15) * time.Second)
		for {
			got := map[string]float64{}
			fams := w.p.s.Scrape(t)
			if f, ok := fams["coredns_warmcache_prefetch_total"]; ok {
				for _, m := range f.GetMetric() {
					var server, result string
					for _, l := range m.GetLabel() {
						switch l.GetName() {
						case "server":
							server = l.GetValue()
						case "result":
							result = l.GetValue()
						}
					}
					if result == "ok" {
						got[w.p.transportOf(server)] += m.GetCounter().GetValue()
					}
				}
			}
			done := true
			for _, tr := range w.p.trs {
				if got[tr.name] < float64(want) {
					done = false
				}
			}
			if done {
				break
			}
			if time.Now().After(deadline) {
				fail(t, c, fmt.Sprintf("refresh: warmcache refreshed %v of %d entries per transport", got, want),
					"coredns_warmcache_prefetch_total{result=\"ok\"} did not reach the number of cached queries")
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Stock cache's entries of the first phase expire TTL seconds after they were stored.
	time.Sleep(time.Until(missDone.Add((TTL + 1) * time.Second)))
}

// cachedQueries counts the distinct cache keys among the queries whose first answer over UDP
// from stock cache is cacheable with a TTL of at most TTL: those warmcache must refresh.
func cachedQueries(r *run, qs []query) int {
	keys := map[string]bool{}
	for j, q := range qs {
		var b []byte
		if rs := r.replies[1][0][j]; len(rs) > 0 {
			b = rs[0]
		}
		m := new(dns.Msg)
		if len(b) == 0 || m.Unpack(b) != nil || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
			continue
		}
		n, ok := 0, true
		for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range sec {
				if rr.Header().Rrtype == dns.TypeOPT {
					continue
				}
				n++
				if rr.Header().Ttl > TTL {
					ok = false
				}
			}
		}
		if !ok || n == 0 {
			continue
		}
		qq := q.msg.Question[0]
		do := q.msg.IsEdns0() != nil && q.msg.IsEdns0().Do()
		keys[fmt.Sprint(strings.ToLower(qq.Name), qq.Qtype, qq.Qclass, do, q.msg.CheckingDisabled)] = true
	}
	return len(keys)
}

// checkFrontDoor requires hits answered by warmcache's front door over UDP and the socket.
func checkFrontDoor(t *testing.T, c *Case, r *run) {
	t.Helper()
	fams := r.p.s.Scrape(t)
	got := map[string]float64{}
	if f, ok := fams["coredns_frontdoor_hits_total"]; ok {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "server" {
					got[r.p.transportOf(l.GetValue())] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if got["udp"] == 0 || got["unix"] == 0 {
		fail(t, c, fmt.Sprintf("front door: hits answered %v, want some over udp and unix", got), "")
	}
}
