package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

// missCase is one forwarding configuration measured on cache misses.
type missCase struct {
	name   string
	chain  chain
	labs   []int  // which of the skewed upstreams it uses, in order; nil: all
	reason string // non-empty: not available
}

type missResult struct {
	res     *kit.Result
	up      lab.Stats
	clients int64
}

// skewed are the three lab upstreams: lognormal medians 8, 15 and 25 ms; the fastest also
// stalls 300 ms on 3 % of queries.
var skewed = []lab.Latency{
	{Dist: lab.LogNormal, Median: 8 * time.Millisecond, Sigma: 0.4, StallProb: 0.03, Stall: 300 * time.Millisecond},
	{Dist: lab.LogNormal, Median: 15 * time.Millisecond, Sigma: 0.4},
	{Dist: lab.LogNormal, Median: 25 * time.Millisecond, Sigma: 0.4},
}

// runMiss measures miss latency under skewed upstream latency (group 2), miss throughput at
// saturation against one DoT upstream, and the upstream cost of each mode (group 3).
func runMiss(ctx context.Context, s *suite) error {
	cache := "cache 3600"
	ourCache := "warmcache"
	if !s.has("warmcache") {
		ourCache = cache
	}
	rt := func(opts ...string) (chain, string) {
		if !s.has("racetls") {
			return chain{}, s.missing("racetls")
		}
		return chain{cache: ourCache, upstream: racetls(opts...)}, ""
	}
	all, allWhy := rt("race all")
	k2, k2Why := rt("race 2")
	hedge, hedgeWhy := rt("hedge 12ms")
	cases := []missCase{
		{name: "forward, fastest upstream only", chain: chain{cache: cache, upstream: forward()}, labs: []int{0}},
		{name: "forward policy random", chain: chain{cache: cache, upstream: forward("policy random")}},
		{name: "forward policy sequential", chain: chain{cache: cache, upstream: forward("policy sequential")}},
		{name: "racetls race all", chain: all, reason: allWhy},
		{name: "racetls race 2 (K-fastest)", chain: k2, reason: k2Why},
		{name: "racetls hedge 12ms", chain: hedge, reason: hedgeWhy},
	}
	rate := pick(s, 200.0, 300.0)
	count := pick(s, 600, 3000)

	cfgs := make([]lab.Config, len(skewed))
	for i, l := range skewed {
		cfgs[i] = lab.Config{Latency: l, UDP: "-", TCP: "-", Seed: uint64(i + 1)}
	}
	labs, err := s.startLabs(cfgs...)
	if err != nil {
		return err
	}
	defer labs.close()

	results := map[string]*missResult{}
	for ci, c := range cases {
		if c.reason != "" {
			fmt.Printf("   %-32s %s\n", c.name, c.reason)
			continue
		}
		use := labs
		if c.labs != nil {
			use = nil
			for _, i := range c.labs {
				use = append(use, labs[i])
			}
		}
		// Upstream counters from before the server starts (racetls dials at start-up).
		before := labs.stats()
		srv, err := s.startCoreDNS("miss", c.chain.corefile(), use.tls(), nil)
		if err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		res, err := kit.Load{
			Network: "udp", Addr: srv.DNS, Conns: 2, InFlight: 512, Rate: rate, Count: count,
			Duration: time.Duration(float64(count)/rate*float64(time.Second)) + 5*time.Second,
			Timeout:  5 * time.Second,
			Next: func(i int) kit.Query {
				return kit.Query{Name: fmt.Sprintf("m%d-%d.example.", ci, i)}
			},
		}.Run(ctx)
		up := diffStats(labs.stats(), before)
		if serr := srv.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		results[c.name] = &missResult{res: res, up: up, clients: res.Sent}
		fmt.Printf("   %-32s p50 %-8s p99 %-8s p99.9 %-8s servfail %d timeouts %d\n", c.name,
			fdur(res.Latency.Quantile(0.5)), fdur(res.Latency.Quantile(0.99)), fdur(res.Latency.Quantile(0.999)),
			res.Rcodes[2], res.Timeouts)
	}

	t := s.rep.table("2. Miss latency: unique names, 3 DoT upstreams (lognormal 8/15/25 ms, the 8 ms one stalls 300 ms on 3 %)",
		fmt.Sprintf("Go generator over UDP at %.0f qps, %d queries per case.", rate, count),
		"case", "p50", "p90", "p99", "p99.9", "max", "SERVFAIL", "timeouts")
	cost := s.rep.table("3. Upstream cost of the miss runs",
		"Lab upstream counters from the server's start to the end of each run. Handshakes per 10k client queries: full / resumed.",
		"case", "upstream q / client q", "connections", "full hs / 10k", "resumed hs / 10k")
	var curves []series
	for _, c := range cases {
		r := results[c.name]
		if r == nil {
			t.add(c.name, c.reason, "", "", "", "", "", "")
			cost.add(c.name, c.reason, "", "", "")
			continue
		}
		h := &r.res.Latency
		t.add(c.name, fdur(h.Quantile(0.5)), fdur(h.Quantile(0.9)), fdur(h.Quantile(0.99)), fdur(h.Quantile(0.999)),
			fdur(h.Max()), fmt.Sprint(r.res.Rcodes[2]), fmt.Sprint(r.res.Timeouts))
		per10k := func(n int64) string { return fmt.Sprintf("%.1f", float64(n)*10000/float64(max(r.clients, 1))) }
		cost.add(c.name, fmt.Sprintf("%.2f", float64(r.up.Queries)/float64(max(r.clients, 1))),
			fmt.Sprint(r.up.Conns), per10k(r.up.Handshakes-r.up.Resumed), per10k(r.up.Resumed))
		curves = append(curves, quantileCurve(c.name, h))
	}
	s.rep.addPlot("miss-latency.png", func(dir, file string) error {
		ticks := []plot.Tick{{Value: nines(0.5), Label: "p50"}, {Value: nines(0.9), Label: "p90"}, {Value: nines(0.99), Label: "p99"}, {Value: nines(0.999), Label: "p99.9"}}
		return lines(dir, file, "Miss latency by quantile (lower is better)", "quantile", "ms (log)", true, ticks, curves)
	})

	fastest, random := results[cases[0].name], results[cases[1].name]
	if race := results[cases[3].name]; race == nil {
		s.rep.target("racetls p99 vs forward random p99", "≤ 0.50×", "-", cases[3].reason)
		s.rep.target("racetls p50 vs fastest upstream p50", "≤ 1.10×", "-", cases[3].reason)
	} else {
		a, b := race.res.Latency.Quantile(0.99), random.res.Latency.Quantile(0.99)
		s.rep.ratioTarget("racetls (race all) p99 vs forward random p99", "≤ 0.50×", float64(a)/float64(b), 0.5, true,
			fdur(a)+" vs "+fdur(b))
		a, b = race.res.Latency.Quantile(0.5), fastest.res.Latency.Quantile(0.5)
		s.rep.ratioTarget("racetls (race all) p50 vs fastest upstream p50", "≤ 1.10×", float64(a)/float64(b), 1.1, true,
			fdur(a)+" vs "+fdur(b))
	}
	return s.missSaturation(ctx)
}

// quantileCurve samples h from p10 to p99.9 against "nines" (-log10(1-q)).
func quantileCurve(name string, h *kit.Histogram) series {
	var xy plotter.XYs
	for _, q := range []float64{0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999} {
		ms := float64(h.Quantile(q)) / float64(time.Millisecond)
		xy = append(xy, plotter.XY{X: nines(q), Y: max(ms, 0.01)})
	}
	return series{name: name, xy: xy}
}

// nines places quantile q on a "number of nines" axis: p90 at 1, p99 at 2, p99.9 at 3.
func nines(q float64) float64 { return -math.Log10(1 - q) }
