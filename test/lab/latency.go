package lab

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Dist is a latency distribution.
type Dist int

// Latency distributions.
const (
	Fixed     Dist = iota // always Median
	LogNormal             // Median·exp(Sigma·N(0,1)): median Median, long right tail
)

func (d Dist) String() string {
	if d == LogNormal {
		return "lognormal"
	}
	return "fixed"
}

// Latency is the delay the lab adds before each reply. The zero value adds none.
type Latency struct {
	Dist   Dist
	Median time.Duration
	Sigma  float64 // LogNormal's shape: 0.5 gives p99 ≈ 3.2×median
	// With probability StallProb a query also waits Stall (a lost packet, a busy resolver).
	StallProb float64
	Stall     time.Duration
}

// random is a mutex-guarded RNG, seeded for reproducible runs.
type random struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newRandom(seed uint64) *random {
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &random{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (r *random) float() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.r.Float64()
}

func (r *random) norm() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.r.NormFloat64()
}

func (r *random) read(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range b {
		b[i] = byte(r.r.Uint32())
	}
}

func (r *random) intn(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.r.IntN(n)
}

// chance reports true with probability p; p <= 0 means always (the Fault convention).
func (r *random) chance(p float64) bool {
	if p <= 0 || p >= 1 {
		return true
	}
	return r.float() < p
}

// sample draws one delay from l.
func (l Latency) sample(r *random) time.Duration {
	d := l.Median
	if l.Dist == LogNormal && l.Sigma > 0 && d > 0 {
		d = time.Duration(float64(d) * math.Exp(l.Sigma*r.norm()))
	}
	if l.StallProb > 0 && l.Stall > 0 && r.float() < l.StallProb {
		d += l.Stall
	}
	return max(d, 0)
}
