package kit

import (
	"math/bits"
	"time"
)

// Histogram is a log-linear latency histogram: 32 buckets per power of two above 64 ns, so a
// quantile is exact to within about 3 %. The zero value is empty and ready to use. It is not
// safe for concurrent use; merge per-goroutine histograms with Merge.
type Histogram struct {
	counts []int64
	n      int64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

const (
	linear     = 64 // values below are counted exactly (ns)
	subBuckets = 32 // buckets per power of two above linear
	maxBucket  = linear + 40*subBuckets
)

func bucketOf(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < linear {
		return int(v)
	}
	shift := bits.Len64(v) - 6 // v>>shift is in [32, 63]
	i := linear + (shift-1)*subBuckets + int(v>>shift) - subBuckets
	return min(i, maxBucket-1)
}

// bucketMid returns a representative value (the middle) of bucket i.
func bucketMid(i int) time.Duration {
	if i < linear {
		return time.Duration(i)
	}
	shift := (i-linear)/subBuckets + 1
	m := uint64((i-linear)%subBuckets + subBuckets)
	lo := m << shift
	return time.Duration(lo + (uint64(1)<<shift)/2)
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]int64, maxBucket)
	}
	h.counts[bucketOf(d)]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]int64, maxBucket)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of observations.
func (h *Histogram) Count() int64 { return h.n }

// Mean returns the average observation, 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Min and Max return the extreme observations (exact).
func (h *Histogram) Min() time.Duration { return h.min }

// Max returns the largest observation (exact).
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the q-quantile (0 ≤ q ≤ 1), e.g. 0.99 for p99; 0 when empty. The result
// is clamped to the exact minimum and maximum.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(max(bucketMid(i), h.min), h.max)
		}
	}
	return h.max
}
