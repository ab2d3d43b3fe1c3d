package k8s

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	corev1 "k8s.io/api/core/v1"

	"github.com/miekg/dns"
)

// prodEnv holds the production values of corefile.example's variables (its header).
var prodEnv = map[string]string{
	"DNSCACHE_PORT":     "53",
	"DNSCACHE_SOCKET":   sockPath,
	"DNSCACHE_HEALTH":   ":8080",
	"DNSCACHE_READY":    ":8181",
	"DNSCACHE_METRICS":  ":9153",
	"DNSCACHE_KUBE_API": "",
}

// normalize drops comments and blank lines and trailing blanks, leaving the directives.
func normalize(corefile string) string {
	var b strings.Builder
	for _, line := range strings.Split(corefile, "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		b.WriteString(strings.TrimRight(line, " \t"))
		b.WriteByte('\n')
	}
	return b.String()
}

// renderExample substitutes corefile.example's {$VAR}s as CoreDNS would. An endpoint line left
// without an argument is dropped: that is what the production value (empty) means.
func renderExample(t *testing.T, env map[string]string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(kit.RepoRoot(t), "corefile.example"))
	if err != nil {
		t.Fatal(err)
	}
	text := normalize(string(data))
	for k, v := range env {
		if !strings.Contains(text, "{$"+k+"}") {
			t.Fatalf("corefile.example does not use {$%s}", k)
		}
		text = strings.ReplaceAll(text, "{$"+k+"}", v)
	}
	if strings.Contains(text, "{$") {
		t.Fatalf("corefile.example uses a variable this test does not know:\n%s", text)
	}
	var out []string
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.TrimSpace(line) != "endpoint" {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

func configMapText(t *testing.T, dir string) string {
	t.Helper()
	cms := all[*corev1.ConfigMap](loadBundle(t, dir))
	if len(cms) != 1 || cms[0].Data["Corefile"] == "" {
		t.Fatalf("%s: want one ConfigMap with a Corefile", dir)
	}
	return cms[0].Data["Corefile"]
}

// TestCorefilesAgree checks that the ConfigMaps hold corefile.example's shape: kube-dns's is
// corefile.example with the production values written in, without the unixsock stanza; the node
// cache's is corefile.example with the production values, its kubernetes stanza replaced by
// the forwarding of the same zones to kube-dns over TCP (placed right before racetls).
func TestCorefilesAgree(t *testing.T) {
	want := renderExample(t, prodEnv)
	stanza := "    unixsock " + sockPath + " {\n        mode 0666\n    }\n"
	if !strings.Contains(want, stanza) {
		t.Fatalf("corefile.example has no stanza %q", stanza)
	}
	kube := normalize(configMapText(t, "kube-dns"))
	if w := strings.Replace(want, stanza, "", 1); kube != w {
		t.Errorf("kube-dns Corefile differs from corefile.example without unixsock:\n--- ConfigMap\n%s--- want\n%s", kube, w)
	}

	k8s := regexp.MustCompile(`(?m)^    kubernetes cluster.local in-addr.arpa ip6.arpa \{\n(        .*\n)*    \}\n`)
	if n := len(k8s.FindAllString(want, -1)); n != 1 {
		t.Fatalf("corefile.example holds %d kubernetes stanzas, want 1", n)
	}
	var fwd strings.Builder
	for _, zone := range []string{"cluster.local", "in-addr.arpa", "ip6.arpa"} {
		fmt.Fprintf(&fwd, "    forward %s %s {\n        force_tcp\n    }\n", zone, kubeDNSUpstream)
	}
	wantNode := strings.Replace(k8s.ReplaceAllString(want, ""), "    racetls . ", fwd.String()+"    racetls . ", 1)
	if node := normalize(configMapText(t, "node-cache")); node != wantNode {
		t.Errorf("node-cache Corefile differs from corefile.example with production values and forwarding to kube-dns:\n--- ConfigMap\n%s--- want\n%s", node, wantNode)
	}
}

// ports are the loopback addresses a test run of a Corefile uses instead of the production ones.
type ports struct {
	s             *kit.CoreDNS
	health, ready string
	kubeAPI       string // an http:// URL on a closed port: there is no API server here
	kubeDNS       string // the node cache's kube-dns upstream: a closed port unless a test sets it
	socket        string
}

func newPorts(t *testing.T) *ports {
	s := kit.Prepare(t)
	return &ports{
		s: s,
		// Not s.Health/s.Ready: kit.Run waits for /ready 200 when the Corefile holds
		// s.Ready, and the kubernetes plugin never gets ready without an API server.
		health:  fmt.Sprintf("127.0.0.1:%d", kit.FreePort(t)),
		ready:   fmt.Sprintf("127.0.0.1:%d", kit.FreePort(t)),
		kubeAPI: fmt.Sprintf("http://127.0.0.1:%d", kit.FreePort(t)),
		kubeDNS: fmt.Sprintf("127.0.0.1:%d", kit.FreePort(t)),
		socket:  s.Sock,
	}
}

// setenv sets the variables of corefile.example as `make run` sets them, to these ports, for
// the rest of the test (not parallel: the environment is the process's), and returns them.
func (p *ports) setenv(t *testing.T) map[string]string {
	env := map[string]string{
		"DNSCACHE_PORT":     fmt.Sprint(p.s.Port),
		"DNSCACHE_SOCKET":   p.socket,
		"DNSCACHE_HEALTH":   p.health,
		"DNSCACHE_READY":    p.ready,
		"DNSCACHE_METRICS":  p.s.Metrics,
		"DNSCACHE_KUBE_API": p.kubeAPI,
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	return env
}

// rewriteConfigMap turns a ConfigMap's production Corefile into one that runs here, by exact
// textual replacements, each of which must apply exactly once (so that a change to the
// ConfigMap that this test would miss fails it instead): the server's port 53 becomes a free
// port, health :8080, ready :8181 and prometheus :9153 become free loopback addresses, the
// socket /dns_cache/dns.sock moves into a temporary directory, and the kubernetes stanza gets
// `endpoint http://127.0.0.1:PORT` on a closed port, because there is no API server and the
// plugin's in-cluster configuration needs a service account token.
func rewriteConfigMap(t *testing.T, corefile string, p *ports) string {
	t.Helper()
	repl := [][2]string{
		{".:53 {", fmt.Sprintf(".:%d {", p.s.Port)},
		{"health :8080 {", "health " + p.health + " {"},
		{"ready :8181\n", "ready " + p.ready + "\n"},
		{"prometheus :9153\n", "prometheus " + p.s.Metrics + "\n"},
	}
	if strings.Contains(corefile, "kubernetes ") {
		repl = append(repl, [2]string{"kubernetes cluster.local in-addr.arpa ip6.arpa {\n", "kubernetes cluster.local in-addr.arpa ip6.arpa {\n        endpoint " + p.kubeAPI + "\n"})
	} else {
		for _, zone := range []string{"cluster.local", "in-addr.arpa", "ip6.arpa"} {
			repl = append(repl, [2]string{"forward " + zone + " " + kubeDNSUpstream + " {", "forward " + zone + " " + p.kubeDNS + " {"})
		}
	}
	if strings.Contains(corefile, "unixsock") {
		repl = append(repl, [2]string{"unixsock " + sockPath + " {", "unixsock " + p.socket + " {"})
	}
	for _, r := range repl {
		if n := strings.Count(corefile, r[0]); n != 1 {
			t.Fatalf("Corefile holds %q %d times, want once:\n%s", r[0], n, corefile)
		}
		corefile = strings.Replace(corefile, r[0], r[1], 1)
	}
	for _, prod := range []string{":53", ":8080", ":8181", ":9153", hostDir, "{$"} {
		if strings.Contains(corefile, prod+" ") || strings.Contains(corefile, prod+"\n") {
			t.Fatalf("rewritten Corefile still uses %s:\n%s", prod, corefile)
		}
	}
	if strings.Contains(corefile, "{$") {
		t.Fatalf("rewritten Corefile still uses an environment variable:\n%s", corefile)
	}
	return corefile
}

// TestConfigMapCorefiles starts bin/coredns on each ConfigMap's Corefile, rewritten to free
// ports (see rewriteConfigMap) and with racetls racing two lab DoT upstreams (test/lab) in place
// of the public resolvers, which this machine cannot reach, and checks that it serves. Without
// an API server the kubernetes plugin waits its startup timeout (5 s), then starts serving
// unsynced: /ready reports it, and only it, not ready; cluster.local names get SERVFAIL.
// Other names are answered by the lab upstreams. The node cache must answer on its socket
// (mode 0666).
func TestConfigMapCorefiles(t *testing.T) {
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	ups := []*lab.Upstream{lab.StartTest(t, lab.Config{CA: ca}), lab.StartTest(t, lab.Config{CA: ca})}
	for _, dir := range []string{"kube-dns", "node-cache"} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			p := newPorts(t)
			if err := ca.WriteFiles(p.s.Dir); err != nil {
				t.Fatal(err)
			}
			corefile := labUpstreams(t, rewriteConfigMap(t, configMapText(t, dir), p), p, ups)
			p.s.Run(t, corefile)
			checkRunning(t, p, strings.Contains(corefile, "unixsock"))
		})
	}
}

// TestCorefileExample starts bin/coredns on corefile.example itself, with its variables set in
// the environment as `make run` sets them (free ports instead of make run's fixed ones) and its
// racetls line racing lab DoT upstreams, and runs the same checks as TestConfigMapCorefiles.
func TestCorefileExample(t *testing.T) {
	p := newPorts(t)
	env := p.setenv(t)
	renderExample(t, env) // every variable is known and used
	data, err := os.ReadFile(filepath.Join(kit.RepoRoot(t), "corefile.example"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteFiles(p.s.Dir); err != nil {
		t.Fatal(err)
	}
	ups := []*lab.Upstream{lab.StartTest(t, lab.Config{CA: ca}), lab.StartTest(t, lab.Config{CA: ca})}
	p.s.Run(t, labUpstreams(t, string(data), p, ups))
	checkRunning(t, p, true)
}

// checkRunning checks a server started on a Corefile of the production shape, racing lab
// upstreams: /health answers; /ready turns 200, or without an API server 503 naming only
// kubernetes; external names are answered over UDP, TCP and the socket; cluster names get
// SERVFAIL (no API server, or no kube-dns, here).
func checkRunning(t *testing.T, p *ports, socket bool) {
	t.Helper()
	s := p.s
	if code, body := get(t, "http://"+p.health+"/health"); code != http.StatusOK {
		t.Errorf("/health: %d %s", code, body)
	}
	corefile, err := os.ReadFile(s.Corefile)
	if err != nil {
		t.Fatal(err)
	}
	kube := strings.Contains(string(corefile), "kubernetes ")
	// /ready's body names the plugins that are not ready. Without an API server the kubernetes
	// plugin never is; racetls is once a lab upstream has answered its first probe.
	want := "200"
	if kube {
		want = "503 kubernetes"
	}
	var code int
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body = get(t, "http://"+p.ready+"/ready")
		got := fmt.Sprint(code)
		if code != http.StatusOK {
			got += " " + strings.ReplaceAll(strings.TrimSpace(body), " ", "")
		}
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready: %s, want %s", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if kube && !strings.Contains(s.Log(), "starting server with unsynced Kubernetes API") {
		t.Errorf("the kubernetes plugin did not start unsynced as expected:\n%s", s.Log())
	}

	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("example.org.", dns.TypeA)
		if r := s.Exchange(t, m, network); r.Rcode != dns.RcodeSuccess || len(kit.Answers(r, dns.TypeA)) == 0 {
			t.Errorf("%s: example.org A: %s with %d answers, want the lab upstream's address", network, dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	}
	m := new(dns.Msg)
	m.SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
	if r := s.Exchange(t, m, "udp"); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("cluster.local with no API server (or kube-dns) to answer it: %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if fams := s.Scrape(t); fams["coredns_dns_requests_total"] == nil {
		t.Error("/metrics has no coredns_dns_requests_total")
	}

	if !socket {
		return
	}
	st, err := os.Stat(p.socket)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o666 {
		t.Errorf("socket %s: mode %v, want a socket with mode 0666", p.socket, st.Mode())
	}
	m = new(dns.Msg)
	m.SetQuestion("example.org.", dns.TypeAAAA)
	if r := exchangeUnix(t, p.socket, m); r.Rcode != dns.RcodeSuccess {
		t.Errorf("socket: example.org AAAA: %s, want NOERROR from the lab upstream", dns.RcodeToString[r.Rcode])
	}
}

// exchangeUnix sends m over the Unix socket with 2-byte framing (RFC 1035 §4.2.2) and reads
// the reply to it.
func exchangeUnix(t *testing.T, path string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.WriteFrame(c, q); err != nil {
		t.Fatalf("write to %s: %v", path, err)
	}
	buf, err := wire.ReadFrame(c, nil)
	if err != nil {
		t.Fatalf("read from %s: %v", path, err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf); err != nil {
		t.Fatalf("reply from %s: %v", path, err)
	}
	if r.Id != m.Id || len(r.Question) != 1 || r.Question[0] != m.Question[0] {
		t.Fatalf("reply from %s does not match the query: %v", path, r)
	}
	return r
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
