package main

import (
	"strings"
	"testing"
	"time"
)

// Output of dnsperf 2.10.0 with -v, trimmed.
const dnsperfOut = `DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.1 -p 15353 -d /tmp/q.txt -n 2 -v
[Status] Sending queries (to 127.0.0.1:15353)
> NOERROR a.example A 0.000120
> NXDOMAIN b.example A 0.000300
> T c.example A
[Status] Testing complete (end of file)

Statistics:

  Queries sent:         3
  Queries completed:    2 (66.67%)
  Queries lost:         1 (33.33%)

  Response codes:       NOERROR 1 (50.00%), NXDOMAIN 1 (50.00%)
  Average packet size:  request 27, response 43
  Run time (s):         0.002261
  Queries per second:   884.564352

  Average Latency (s):  0.000210 (min 0.000120, max 0.000300)
  Latency StdDev (s):   0.000090
`

func TestParseDnsperf(t *testing.T) {
	r, err := parseDnsperf(strings.NewReader(dnsperfOut))
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 3 || r.Completed != 2 || r.Lost != 1 {
		t.Errorf("sent/completed/lost %d/%d/%d", r.Sent, r.Completed, r.Lost)
	}
	if r.QPS < 884 || r.QPS > 885 {
		t.Errorf("qps %v", r.QPS)
	}
	if r.Avg != 210*time.Microsecond {
		t.Errorf("avg %v", r.Avg)
	}
	if r.Rcodes["NOERROR"] != 1 || r.Rcodes["NXDOMAIN"] != 1 {
		t.Errorf("rcodes %v", r.Rcodes)
	}
	if r.Latency.Count() != 2 || r.Latency.Max() != 300*time.Microsecond {
		t.Errorf("latencies: %d, max %v", r.Latency.Count(), r.Latency.Max())
	}
	if _, err := parseDnsperf(strings.NewReader("[Status] Command line: dnsperf\n")); err == nil {
		t.Error("output without statistics parsed")
	}
}

func TestParseShim(t *testing.T) {
	out := "noise\npreload_bench case=external name=www.example.com candidates=4 n=100 shim_p50_us=80.0 shim_p99_us=150.0 " +
		"glibc_p50_us=280.0 glibc_p99_us=400.0 ratio_p50=0.29 ratio_p99=0.38\n" +
		"preload_bench case=absolute name=www.example.com. candidates=1 n=100 shim_p50_us=50.0 shim_p99_us=90.0 " +
		"glibc_p50_us=60.0 glibc_p99_us=99.0 ratio_p50=0.83 ratio_p99=0.91\n"
	r := parseShim(out)
	if len(r) != 2 || r["external"]["glibc_p50_us"] != "280.0" || r["absolute"]["ratio_p50"] != "0.83" || r["external"]["candidates"] != "4" {
		t.Errorf("parsed %v", r)
	}
}

func TestQualifiedNames(t *testing.T) {
	// Name 0 (TTL 5) asked every 2 s for 20 s: hot. Name 1 (TTL 12) asked once: not hot.
	// Name 2 (TTL 31 mod... ) asked at 1 s and 19 s: a gap longer than its TTL.
	seq := make([]int, 20)
	for k := range seq {
		seq[k] = 3
	}
	for k := 0; k < 20; k += 2 {
		seq[k] = 0
	}
	seq[1], seq[3], seq[19] = 1, 2, 2
	q := qualifiedNames(seq, 1)
	if !q[0] || q[1] || q[2] {
		t.Errorf("qualified: %v %v %v, want true false false (TTLs %d %d %d)", q[0], q[1], q[2], warmTTL(0), warmTTL(1), warmTTL(2))
	}
	// 5000 queries of name 0: its first query is not a miss of the warm cache.
	if got := missCurve([]float64{0, 2, 3}, make([]int, 5000), []bool{true}, 500); len(got) != 2 || got[0].Y != 1*100/2500.0 || got[1].Y != 100/2500.0 {
		t.Errorf("missCurve %v", got)
	}
}
