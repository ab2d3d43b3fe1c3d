package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	ups, err := run("lab.test", dir, "ttl:42", []string{"fixed:1ms", "fault:refused"})
	for _, u := range ups {
		defer u.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	c := &dns.Client{Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	r, _, err := c.Exchange(m, ups[0].UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 42 {
		t.Errorf("upstream 0: %v, want one answer with TTL 42", r)
	}
	if r, _, err = c.Exchange(m, ups[1].UDPAddr()); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("upstream 1: %v %v, want REFUSED", r, err)
	}
	if _, err := run("lab.test", "", "", []string{"bogus:1"}); err == nil {
		t.Error("a bad spec was accepted")
	}
}

func TestMetric(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `# TYPE coredns_dns_requests_total counter
coredns_dns_requests_total{proto="udp",server="dns://:53"} 3
coredns_dns_requests_total{proto="tcp",server="dns://:53"} 2
coredns_dns_requests_total{proto="udp",server="dns://:54"} 4
`)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{addr, "coredns_dns_requests_total"}, "9"},
		{[]string{addr, "coredns_dns_requests_total", "proto=udp"}, "7"},
		{[]string{addr, "coredns_dns_requests_total", "proto=udp", "server=dns://:53"}, "3"},
		{[]string{addr, "missing"}, "0"},
	} {
		var out strings.Builder
		if code := metric(&out, tc.args); code != 0 || strings.TrimSpace(out.String()) != tc.want {
			t.Errorf("labdns metric %v = %q, exit %d; want %s", tc.args, out.String(), code, tc.want)
		}
	}
	if metric(io.Discard, []string{addr}) != 2 || metric(io.Discard, []string{addr, "x", "novalue"}) != 2 {
		t.Error("bad usage accepted")
	}
}
