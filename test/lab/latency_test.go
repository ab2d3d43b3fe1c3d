package lab

import (
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestLatencyFixed(t *testing.T) {
	const d = 50 * time.Millisecond
	u := start(t, Config{Latency: Latency{Median: d}})
	for _, tr := range []string{"udp", "tcp", "tls"} {
		t0 := time.Now()
		ask(t, u, tr, "www.example.", dns.TypeA)
		if el := time.Since(t0); el < d {
			t.Errorf("%s: answered in %v, want at least %v", tr, el, d)
		}
	}
	u.SetLatency(Latency{Median: 0, StallProb: 1, Stall: d})
	t0 := time.Now()
	ask(t, u, "udp", "www.example.", dns.TypeA)
	if el := time.Since(t0); el < d {
		t.Errorf("stall: answered in %v, want at least %v", el, d)
	}
}

// quantiles draws n samples of l and returns the 50th and 99th percentiles and the
// fraction of samples at or above stall.
func quantiles(l Latency, seed uint64, n int, stall time.Duration) (p50, p99 time.Duration, stalled float64) {
	r := newRandom(seed)
	s := make([]time.Duration, n)
	k := 0
	for i := range s {
		s[i] = l.sample(r)
		if stall > 0 && s[i] >= stall {
			k++
		}
	}
	slices.Sort(s)
	return s[n/2], s[n*99/100], float64(k) / float64(n)
}

func TestLatencyDistribution(t *testing.T) {
	const med = 8 * time.Millisecond
	p50, p99, _ := quantiles(Latency{Dist: LogNormal, Median: med, Sigma: 0.5}, 1, 20000, 0)
	// Lognormal(σ=0.5): median = Median, p99 = Median·e^(0.5·2.326) ≈ 3.2×.
	if p50 < med*9/10 || p50 > med*11/10 {
		t.Errorf("lognormal p50 %v, want ≈ %v", p50, med)
	}
	if p99 < med*28/10 || p99 > med*36/10 {
		t.Errorf("lognormal p99 %v, want ≈ %v", p99, med*32/10)
	}
	p50, _, _ = quantiles(Latency{Median: med}, 1, 1000, 0)
	if p50 != med {
		t.Errorf("fixed p50 %v, want %v", p50, med)
	}
	_, _, stalled := quantiles(Latency{Median: med, StallProb: 0.03, Stall: 300 * time.Millisecond}, 1, 20000, 300*time.Millisecond)
	if stalled < 0.02 || stalled > 0.04 {
		t.Errorf("stalled fraction %.4f, want ≈ 0.03", stalled)
	}
	// The same seed gives the same draws.
	a, b := newRandom(42), newRandom(42)
	l := Latency{Dist: LogNormal, Median: med, Sigma: 1, StallProb: 0.5, Stall: time.Second}
	for range 100 {
		if x, y := l.sample(a), l.sample(b); x != y {
			t.Fatalf("seeded draws differ: %v != %v", x, y)
		}
	}
}
