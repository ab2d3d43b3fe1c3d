package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// satCase is one forwarder driven to saturation through one DoT upstream of its own.
type satCase struct {
	name   string
	chain  chain
	reason string

	labs   labSet
	before lab.Stats
	srv    *server
	res    *kit.Result   // best round
	cpu    time.Duration // server CPU per answered query, lowest round
	peak   int64
	n      int
}

// missSaturation drives unique names with 200 queries in flight through one DoT upstream:
// stock forward (a connection per in-flight query) against racetls (pipelined connections).
// Both servers run at once and the rounds interleave; the best round counts.
func (s *suite) missSaturation(ctx context.Context) error {
	cases := []*satCase{
		{name: "forward", chain: chain{upstream: forward()}},
		{name: "racetls", chain: chain{upstream: racetls()}},
	}
	if !s.has("racetls") {
		cases[1].reason = s.missing("racetls")
	}
	defer func() {
		for _, c := range cases {
			if c.srv != nil {
				c.srv.stop()
			}
			c.labs.close()
		}
	}()
	rounds := pick(s, 1, 2)
	dur := pick(s, 3*time.Second, 5*time.Second)
	for i, c := range cases {
		if c.reason != "" {
			continue
		}
		var err error
		if c.labs, err = s.startLabs(lab.Config{Latency: lab.Latency{Dist: lab.Fixed, Median: 5 * time.Millisecond}, UDP: "-", TCP: "-", Seed: uint64(9 + i)}); err != nil {
			return err
		}
		// Counted from before the server starts: racetls dials at start-up.
		c.before = c.labs.stats()
		if c.srv, err = s.startCoreDNS("sat", c.chain.corefile(), c.labs.tls(), nil); err != nil {
			return err
		}
	}
	time.Sleep(300 * time.Millisecond)
	for round := range rounds {
		for ci, c := range cases {
			if c.srv == nil {
				continue
			}
			if err := s.satRound(ctx, c, ci, dur, round == rounds-1 && !s.quick); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
		}
	}

	t := s.rep.table("2b. Miss throughput at saturation: unique names, one DoT upstream (5 ms), 200 queries in flight",
		fmt.Sprintf("Go generator over UDP, 4 sockets × 50 in flight, best of %d interleaved rounds of %v; no cache; each server has its own lab upstream. "+
			"Connections: accepted by the upstream from the server's start on / peak open. CPU/q: server CPU time per answered query.", rounds, dur),
		"case", "QPS", "CPU/q", "p50", "p99", "SERVFAIL", "timeouts", "connections", "peak open", "full hs", "resumed hs")
	for _, c := range cases {
		if c.reason != "" {
			t.add(c.name, c.reason, "", "", "", "", "", "", "", "", "")
			continue
		}
		up := diffStats(c.labs.stats(), c.before)
		c.n = int(up.Conns)
		t.add(c.name, fqps(c.res.QPS()), fcpu(c.cpu), fdur(c.res.Latency.Quantile(0.5)), fdur(c.res.Latency.Quantile(0.99)),
			fmt.Sprint(c.res.Rcodes[2]), fmt.Sprint(c.res.Timeouts), fmt.Sprint(up.Conns), fmt.Sprint(c.peak),
			fmt.Sprint(up.Handshakes-up.Resumed), fmt.Sprint(up.Resumed))
		fmt.Printf("   saturation %-10s %8.0f qps, %s CPU/q, %d connections (peak %d open)\n", c.name, c.res.QPS(), fcpu(c.cpu), up.Conns, c.peak)
	}
	fw, rt := cases[0], cases[1]
	if rt.reason != "" {
		s.rep.target("racetls miss QPS vs forward, one DoT upstream", "≥ 1.30×, ≤ 3 conns", "-", rt.reason)
		return nil
	}
	// Issue 16: miss CPU per query on one DoT upstream at 200 in flight.
	s.rep.ratioTarget("racetls miss CPU/q vs forward, one DoT upstream, 200 in flight", "≤ 0.50×",
		float64(rt.cpu)/float64(max(fw.cpu, 1)), 0.5, true, fcpu(rt.cpu)+" vs "+fcpu(fw.cpu))
	ratio := rt.res.QPS() / fw.res.QPS()
	status := "NOT met"
	if ratio >= 1.3 && rt.n <= 3 {
		status = "met"
	}
	s.rep.target("racetls miss QPS vs forward, one DoT upstream", "≥ 1.30×, ≤ 3 conns",
		fmt.Sprintf("%.2f× (%.0f vs %.0f qps; CPU/q %s vs %s: %.2f× by CPU), %d vs %d conns", ratio, rt.res.QPS(), fw.res.QPS(),
			fcpu(rt.cpu), fcpu(fw.cpu), float64(fw.cpu)/float64(max(rt.cpu, 1)), rt.n, fw.n), status)
	return nil
}

// satRound runs one saturation round against c, optionally under a CPU profile.
func (s *suite) satRound(ctx context.Context, c *satCase, ci int, dur time.Duration, profile bool) error {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak int64
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				peak = max(peak, c.labs.stats().OpenConns)
			}
		}
	})
	var res *kit.Result
	run := func() error {
		cpu, err := cpuPer(c.srv, func() (int64, error) {
			var err error
			res, err = kit.Load{
				Network: "udp", Addr: c.srv.DNS, Conns: 4, InFlight: 50, Duration: dur, Timeout: 5 * time.Second,
				Next: func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("s%d-%d-%d.example.", ci, c.n, i)} },
			}.Run(ctx)
			if err != nil {
				return 0, err
			}
			return res.Answered, nil
		})
		keepMin(&c.cpu, cpu)
		return err
	}
	c.n++ // a fresh name prefix per round: every query misses
	var err error
	if profile {
		err = s.profileDuring(c.srv, "miss-"+c.name, c.name+": misses at saturation, one DoT upstream", dur-time.Second, run)
	} else {
		err = run()
	}
	close(stop)
	wg.Wait()
	if err != nil {
		return err
	}
	c.peak = max(c.peak, peak)
	if c.res == nil || res.QPS() > c.res.QPS() {
		c.res = res
	}
	return nil
}
