package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"gonum.org/v1/plot/plotter"
)

const warmNames = 10000

// warmTTL is name i's TTL: 5 to 30 s.
func warmTTL(i int) int { return 5 + (i*7919)%26 }

func warmName(i int) string { return fmt.Sprintf("ttl%d-w%d.example.", warmTTL(i), i) }

// warmCase is one cache keeping a Zipf workload warm.
type warmCase struct {
	name    string
	chain   chain
	metric  string // the cache's client-visible miss counter
	reason  string
	labs    labSet
	srv     *server
	res     [2]*kit.Result // hot, cold
	up      lab.Stats
	samples []float64 // the hot block's miss counter every warmStep
}

const warmStep = 5 * time.Second

// runWarm runs a Zipf workload over 10k names with TTLs of 5–30 s against stock cache with
// prefetch and against warmcache, both at once (two servers on the server core, the same
// query sequence). The names asked at least once per TTL all run long ("hot") go to one
// server block and the rest to another, so the hot block's own miss counter is exactly the
// hot names' client-visible misses, whatever the machine's scheduling does to latencies.
func runWarm(ctx context.Context, s *suite) error {
	dur := pick(s, 35*time.Second, 120*time.Second)
	// Misses before the first TTLs have run out are the cache filling; the target counts
	// after it.
	warmup := pick(s, 10*time.Second, 30*time.Second)
	rate := 500.0
	n := int(rate * dur.Seconds())
	rng := rand.New(rand.NewPCG(42, 4242))
	z := rand.NewZipf(rng, 1.1, 1, warmNames-1)
	seq := make([]int, n)
	for i := range seq {
		seq[i] = int(z.Uint64())
	}
	hot := qualifiedNames(seq, rate)
	var idx [2][]int // query indexes sent to the hot and the cold block
	for k, name := range seq {
		if hot[name] {
			idx[0] = append(idx[0], k)
		} else {
			idx[1] = append(idx[1], k)
		}
	}

	oursUp := forward()
	if s.has("racetls") {
		oursUp = racetls()
	}
	cases := []*warmCase{
		{name: "stock cache prefetch", chain: chain{cache: "cache {\n    success 20000\n    prefetch 1 1m 10%\n}", upstream: forward()},
			metric: "coredns_cache_misses_total"},
		{name: "warmcache", chain: chain{cache: "warmcache", upstream: oursUp}, metric: "coredns_warmcache_misses_total"},
	}
	if !s.has("warmcache") {
		cases[1].reason = s.missing("warmcache")
	}
	defer func() {
		for _, c := range cases {
			if c.srv != nil {
				c.srv.stop()
			}
			c.labs.close()
		}
	}()
	var live []*warmCase
	for _, c := range cases {
		if c.reason != "" {
			continue
		}
		var err error
		if c.labs, err = s.startLabs(lab.Config{Latency: lab.Latency{Dist: lab.Fixed, Median: 10 * time.Millisecond}, UDP: "-", TCP: "-"}); err != nil {
			return err
		}
		hotBlock := c.chain
		hotBlock.metrics = true
		corefile := hotBlock.block("{{.Port}}", true) + c.chain.block("{{.Port2}}", false)
		if c.srv, err = s.startCoreDNS("warm", corefile, c.labs.tls(), nil); err != nil {
			return err
		}
		live = append(live, c)
	}
	fmt.Printf("   Zipf(1.1) over %d names, TTL 5-30 s, %.0f qps for %v, %d cache(s) at once\n", warmNames, rate, dur, len(live))
	var wg sync.WaitGroup
	errs := make([]error, 3*len(live))
	for i, c := range live {
		addrs := [2]string{c.srv.DNS, fmt.Sprintf("127.0.0.1:%d", c.srv.Port2)}
		for side := range 2 {
			wg.Go(func() {
				ks := idx[side]
				c.res[side], errs[3*i+side] = kit.Load{
					Network: "udp", Addr: addrs[side], InFlight: 256, Count: len(ks), Duration: dur + 10*time.Second,
					Schedule: func(j int) time.Duration { return time.Duration(float64(ks[j]) / rate * float64(time.Second)) },
					Next:     func(j int) kit.Query { return kit.Query{Name: warmName(seq[ks[j]])} },
				}.Run(ctx)
			})
		}
		wg.Go(func() { c.samples, errs[3*i+2] = sampleMisses(ctx, c, dur) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%s: %w", live[i/3].name, err)
		}
	}
	for _, c := range live {
		c.up = c.labs.stats()
		if err := c.srv.stop(); err != nil {
			return err
		}
		c.srv = nil
	}

	// Hot-name queries after the warm-up, less the names' first queries (a cold cache must
	// miss those).
	from := int(warmup.Seconds() * rate)
	var hotQueries, firsts int
	seen := make([]bool, warmNames)
	for k, name := range seq {
		first := !seen[name]
		seen[name] = true
		if !hot[name] || k < from {
			continue
		}
		hotQueries++
		if first {
			firsts++
		}
	}
	t := s.rep.table("4. Keeping warm: Zipf(1.1) over 10k names, TTL 5–30 s",
		fmt.Sprintf("%.0f qps for %v, one upstream at 10 ms. Hot names: asked at least once per TTL for the whole run (%d names, %d queries after a %v warm-up). "+
			"Their queries go to a server block of their own, whose miss counter gives the client-visible misses exactly; names first asked after the warm-up are not counted.",
			rate, dur, countTrue(hot), hotQueries, warmup),
		"case", "hot misses", "hot miss rate", "hot queries", "all queries", "upstream q", "upstream q / client q", "timeouts")
	var curves []series
	rates := map[string]float64{}
	for _, c := range cases {
		if c.reason != "" {
			t.add(c.name, c.reason, "", "", "", "", "", "")
			continue
		}
		w := int(warmup / warmStep)
		misses := c.samples[len(c.samples)-1] - c.samples[min(w, len(c.samples)-1)] - float64(firsts)
		misses = max(misses, 0)
		r := misses / float64(max(hotQueries, 1))
		rates[c.name] = r
		t.add(c.name, fmt.Sprintf("%.0f", misses), fmt.Sprintf("%.3f%%", 100*r), fmt.Sprint(hotQueries), fmt.Sprint(n),
			fmt.Sprint(c.up.Queries), fmt.Sprintf("%.3f", float64(c.up.Queries)/float64(n)),
			fmt.Sprint(c.res[0].Timeouts+c.res[1].Timeouts))
		curves = append(curves, series{name: c.name, xy: missCurve(c.samples, seq, hot, rate)})
		fmt.Printf("   %-22s hot-name misses after warm-up %.0f of %d (%.3f%%), upstream queries %d\n", c.name, misses, hotQueries, 100*r, c.up.Queries)
	}
	s.rep.addPlot("keep-warm.png", func(dir, file string) error {
		return lines(dir, file, "Hot-name misses over time (lower is better)", "seconds", "misses in each 5 s (% of hot-name queries)", false, nil, curves)
	})
	if cases[1].reason != "" {
		s.rep.target("warmcache hot-name miss rate after warm-up", "< 0.1 %", "-", cases[1].reason)
		return nil
	}
	r := rates[cases[1].name]
	status := "NOT met"
	if r < 0.001 {
		status = "met"
	}
	s.rep.target("warmcache hot-name miss rate after warm-up", "< 0.1 %",
		fmt.Sprintf("%.3f %% (stock cache prefetch: %.3f %%)", 100*r, 100*rates[cases[0].name]), status)
	return nil
}

// sampleMisses reads the hot block's miss counter at the start and every warmStep until dur.
func sampleMisses(ctx context.Context, c *warmCase, dur time.Duration) ([]float64, error) {
	port := fmt.Sprintf(":%d", c.srv.Port) // the hot block's server label ends in its port
	var out []float64
	tick := time.NewTicker(warmStep)
	defer tick.Stop()
	for i := 0; ; i++ {
		m, err := kit.ScrapeAddr(c.srv.Metrics)
		if err != nil {
			return nil, err
		}
		out = append(out, m.SumWhere(c.metric, func(l map[string]string) bool { return strings.HasSuffix(l["server"], port) }))
		if time.Duration(i)*warmStep >= dur {
			return out, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
}

// missCurve turns the counter samples into the share of hot-name queries that missed in
// each step, names' first queries left out.
func missCurve(samples []float64, seq []int, hot []bool, rate float64) plotter.XYs {
	per := int(warmStep.Seconds() * rate)
	seen := make([]bool, len(hot))
	var xy plotter.XYs
	for i := 1; i < len(samples); i++ {
		q, firsts := 0, 0
		for k := (i - 1) * per; k < min(i*per, len(seq)); k++ {
			name := seq[k]
			if !hot[name] {
				continue
			}
			q++
			if !seen[name] {
				seen[name] = true
				firsts++
			}
		}
		if q > 0 {
			m := max(samples[i]-samples[i-1]-float64(firsts), 0)
			xy = append(xy, plotter.XY{X: float64(i) * warmStep.Seconds(), Y: 100 * m / float64(q)})
		}
	}
	return xy
}

// qualifiedNames marks the names asked at least twice and never left unasked longer than
// their TTL, query k being sent at k/rate.
func qualifiedNames(seq []int, rate float64) []bool {
	last := make([]float64, warmNames)
	count := make([]int, warmNames)
	ok := make([]bool, warmNames)
	for i := range ok {
		ok[i] = true
	}
	for k, name := range seq {
		at := float64(k) / rate
		if count[name] > 0 && at-last[name] > float64(warmTTL(name)) {
			ok[name] = false
		}
		last[name] = at
		count[name]++
	}
	end := float64(len(seq)) / rate
	for i := range ok {
		ok[i] = ok[i] && count[i] >= 2 && end-last[i] <= float64(warmTTL(i))
	}
	return ok
}

func countTrue(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}
