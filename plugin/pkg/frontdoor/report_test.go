package frontdoor

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/test"
	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/dnscache/dnscache/test/kit"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// hitCase is a query the cache answers: name, type, family, DO bit and the reply's rcode.
type hitCase struct {
	name  string
	qtype uint16
	fam   int
	do    bool
	rcode int
}

func (h hitCase) msgs(t *testing.T) (q, reply *dns.Msg, packed []byte) {
	t.Helper()
	q = new(dns.Msg)
	q.SetQuestion(h.name, h.qtype)
	if h.do {
		q.SetEdns0(1232, true)
	}
	packed, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	reply = new(dns.Msg)
	reply.SetRcode(q, h.rcode)
	if h.rcode == dns.RcodeSuccess && h.qtype == dns.TypeA {
		rr, _ := dns.NewRR(h.name + " 60 IN A 192.0.2.1")
		reply.Answer = append(reply.Answer, rr)
	}
	return q, reply, packed
}

// TestReporterAsPrometheus: hits counted by a Reporter, one at a time and in batches (a
// tally), give the same coredns_dns_* series as the prometheus plugin gives the same queries
// answered through it, in a block for the root zone (the series found without a map) and
// in blocks with other zones; only the durations differ.
func TestReporterAsPrometheus(t *testing.T) {
	cases := []hitCase{
		{"a.example.org.", dns.TypeA, 1, false, dns.RcodeSuccess},
		{"b.example.org.", dns.TypeA, 2, false, dns.RcodeSuccess},
		{"a.example.org.", dns.TypeAAAA, 1, true, dns.RcodeSuccess},
		{"nx.example.org.", dns.TypeA, 2, false, dns.RcodeNameError},
		{"a.example.net.", dns.TypeMX, 2, true, dns.RcodeServerFailure},
		{"a.example.net.", 65280, 1, false, dns.RcodeSuccess}, // "other"
		{"a.example.net.", dns.TypeNULL, 1, false, dns.RcodeRefused},
		{"c.example.org.", dns.TypeA, 1, false, dns.RcodeSuccess},
	}
	for i, zones := range [][]string{{"."}, {"example.org.", "."}, {"example.org."}} {
		ref, hit := fmt.Sprintf("dns://ref%d", i), fmt.Sprintf("dns://hit%d", i)
		m := metrics.New("localhost:0")
		for _, z := range zones {
			m.AddZone(z)
		}
		var reply *dns.Msg // what the chain below prometheus answers
		next := plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, _ *dns.Msg) (int, error) {
			return dns.RcodeSuccess, w.WriteMsg(reply)
		})
		m.Next = next
		r := &Reporter{Server: hit, Proto: "udp", Zones: m.ZoneNames, Plugin: next.Name()}
		var tl tally
		for round := range 3 {
			for j, h := range cases {
				var packed []byte
				_, reply, packed = h.msgs(t)
				var w dns.ResponseWriter = &test.ResponseWriter{}
				if h.fam == 2 {
					w = &test.ResponseWriter6{}
				}
				// The prometheus plugin sees the request; its Next writes the reply.
				ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: ref})
				if _, err := m.ServeDNS(ctx, w, requestOf(t, packed)); err != nil {
					t.Fatal(err)
				}
				q, err := wire.ParseQuery(packed)
				if err != nil {
					t.Fatal(err)
				}
				if round == 0 {
					r.Hit(&q, packed, h.fam, reply.Len(), h.rcode, 0)
					continue
				}
				// Batches: the same series in runs, and series interleaved.
				tl.add(r, &q, packed, h.fam, reply.Len(), h.rcode)
				if round == 2 || j%3 == 2 {
					tl.flush(0)
				}
			}
			tl.flush(0)
		}
		want, got := seriesOf(t, ref), seriesOf(t, hit)
		if len(want) == 0 {
			t.Fatalf("zones %v: the prometheus plugin counted nothing", zones)
		}
		var diff []string
		for k, v := range want {
			if got[k] != v {
				diff = append(diff, fmt.Sprintf("%s: reporter %v, prometheus %v", k, got[k], v))
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok {
				diff = append(diff, fmt.Sprintf("%s: reporter %v, prometheus none", k, v))
			}
		}
		sort.Strings(diff)
		for _, d := range diff {
			t.Errorf("zones %v: %s", zones, d)
		}
	}
}

// requestOf unpacks the request the server would hand to the chain.
func requestOf(t *testing.T, b []byte) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	return m
}

// seriesOf returns the coredns_dns_* series of server without the server label; of the
// request durations only the counts, which do not depend on time.
func seriesOf(t *testing.T, server string) map[string]float64 {
	t.Helper()
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := kit.Families{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	return byName.Flat("coredns_dns_",
		func(labels map[string]string) bool { return labels["server"] == server },
		func(name, value string) (string, bool) { return value, name != "server" },
		"coredns_dns_request_duration_seconds")
}
