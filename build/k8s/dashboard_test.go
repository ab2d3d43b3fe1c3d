package k8s

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
)

// Our plugins' metric prefixes: the dashboard must chart every family under them.
var pluginPrefixes = []string{"coredns_racetls_", "coredns_warmcache_", "coredns_unixsock_"}

var metricName = regexp.MustCompile(`\bcoredns_[a-z0-9_]+`)

// dashboard is the part of the Grafana JSON the test checks; the rest is walked generically.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// loadDashboard returns the dashboard and every metric name its queries (panel targets and
// template variables) reference.
func loadDashboard(t *testing.T) (*dashboard, []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(kit.RepoRoot(t), "build", "grafana", "dnscache.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				walk(c, k)
			}
		case []any:
			for _, c := range v {
				walk(c, key)
			}
		case string:
			if key == "expr" || key == "query" || key == "definition" {
				for _, m := range metricName.FindAllString(v, -1) {
					seen[m] = true
				}
			}
		}
	}
	walk(raw, "")
	return &d, slices.Sorted(func(yield func(string) bool) {
		for m := range seen {
			if !yield(m) {
				return
			}
		}
	})
}

// TestDashboardStructure checks what Grafana would otherwise report only on import: unique
// panel ids, panels on the 24-column grid, every query on the dashboard's data source
// variable, every $variable defined.
func TestDashboardStructure(t *testing.T) {
	d, names := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard without uid or title")
	}
	vars := map[string]bool{"__rate_interval": true, "__interval": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: gridPos %+v off the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source is not ${datasource}", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Expr == "" || refs[tg.RefID] {
				t.Errorf("panel %q: empty query or refId %q used twice", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			for _, m := range regexp.MustCompile(`\$\{?(\w+)`).FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[m[1]] {
					t.Errorf("panel %q: undefined variable $%s", p.Title, m[1])
				}
			}
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") {
				t.Errorf("panel %q: unbalanced parentheses in %s", p.Title, tg.Expr)
			}
		}
	}
	for _, prefix := range pluginPrefixes {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, prefix) }) {
			t.Errorf("the dashboard charts nothing under %s", prefix)
		}
	}
}

// TestDashboardMetricsExist runs bin/coredns with unixsock, warmcache and racetls (racing two
// lab DoT upstreams and one on a closed port), sends traffic over UDP and the socket (one bad
// frame included, so that error counters exist), and checks that every metric the dashboard
// references is on /metrics, and that every family of the three plugins is on the dashboard.
func TestDashboardMetricsExist(t *testing.T) {
	_, names := loadDashboard(t)

	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	u1 := lab.StartTest(t, lab.Config{CA: ca})
	u2 := lab.StartTest(t, lab.Config{CA: ca})
	closed := fmt.Sprintf("127.0.0.1:%d", kit.FreePort(t))

	s := kit.Prepare(t)
	if err := ca.WriteFiles(s.Dir); err != nil {
		t.Fatal(err)
	}
	s.Run(t, fmt.Sprintf(`.:{{.Port}} {
    unixsock {{.Sock}} {
        mode 0666
    }
    {{.Std}}
    warmcache
    racetls . tls://%[1]s%%%[4]s tls://%[2]s%%%[4]s tls://%[3]s%%%[4]s {
        tls {{.CA}}
        race 2
    }
}
`, u1.TLSAddr(), u2.TLSAddr(), closed, u1.ServerName()))
	waitListening(t, s)

	for i := range 5 {
		for range 2 { // a miss, then a hit
			m := new(dns.Msg)
			m.SetQuestion(fmt.Sprintf("name%d.example.", i), dns.TypeA)
			if r := s.Exchange(t, m, "udp"); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
				t.Fatalf("%s: %s with %d answers", m.Question[0].Name, dns.RcodeToString[r.Rcode], len(r.Answer))
			}
		}
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("sock%d.example.", i), dns.TypeAAAA)
		if r := exchangeUnix(t, s.Sock, m); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("socket: %s: %s", m.Question[0].Name, dns.RcodeToString[r.Rcode])
		}
	}
	badFrame(t, s.Sock)

	var fams map[string]*dto.MetricFamily
	var missing []string
	// Counters updated after the reply is written (and the bad frame's) may lag the last
	// exchange by a moment.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		fams = s.Scrape(t)
		missing = missing[:0]
		for _, n := range names {
			if !exported(fams, n) {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("the dashboard references metrics that are not on /metrics: %v", missing)
	}
	charted := map[string]bool{}
	for _, n := range names {
		charted[n] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			charted[strings.TrimSuffix(n, suffix)] = true
		}
	}
	for fam := range fams {
		if slices.ContainsFunc(pluginPrefixes, func(p string) bool { return strings.HasPrefix(fam, p) }) && !charted[fam] {
			t.Errorf("%s is on /metrics but not on the dashboard", fam)
		}
	}
}

// waitListening waits for CoreDNS's startup banner. kit.Run returns once /ready answers
// 200, but CoreDNS runs OnStartup hooks (the ready listener among them) before it opens the
// DNS listeners, so a query sent at once may find the port closed.
func waitListening(t *testing.T, s *kit.CoreDNS) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.Log(), "CoreDNS-"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no startup banner after 10s:\n%s", s.Log())
		}
	}
}

// exported reports whether name is a family on /metrics, or a histogram's _bucket, _sum or
// _count series.
func exported(fams map[string]*dto.MetricFamily, name string) bool {
	if _, ok := fams[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f := fams[base]; f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
				return true
			}
		}
	}
	return false
}

// badFrame sends a zero-length frame, which the socket must answer by closing the connection.
func badFrame(t *testing.T, path string) {
	t.Helper()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(binary.BigEndian.AppendUint16(nil, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the socket answered a zero-length frame")
	}
}
