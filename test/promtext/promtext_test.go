package promtext

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestScrapeAndSum(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `# HELP coredns_dns_requests_total Counter.
# TYPE coredns_dns_requests_total counter
coredns_dns_requests_total{proto="udp",server="dns://:53"} 3
coredns_dns_requests_total{proto="tcp",server="dns://:53"} 2
coredns_warmcache_entries{server="dns://:53"} 7
go_goroutines 12
`)
	}))
	defer ts.Close()
	m, err := Scrape(strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"coredns_dns_requests_total", nil, 5},
		{"coredns_dns_requests_total", []string{`proto="udp"`}, 3},
		{"coredns_dns_requests_total", []string{`proto="udp"`, `server="x"`}, 0},
		{"coredns_warmcache_entries", nil, 7},
		{"go_goroutines", nil, 12},
		{"missing", nil, 0},
	} {
		if got := Sum(m, tc.name, tc.match...); got != tc.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tc.name, tc.match, got, tc.want)
		}
	}
}
