package kit

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var a, b Histogram
	var all []time.Duration
	for i := range 20000 {
		d := time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
		all = append(all, d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	slices.Sort(all)
	if a.Count() != int64(len(all)) {
		t.Fatalf("count %d, want %d", a.Count(), len(all))
	}
	if a.Min() != all[0] || a.Max() != all[len(all)-1] {
		t.Errorf("min/max %v/%v, want %v/%v", a.Min(), a.Max(), all[0], all[len(all)-1])
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		want := all[int(q*float64(len(all)))-1]
		got := a.Quantile(q)
		if diff := float64(got-want) / float64(want); diff > 0.035 || diff < -0.035 {
			t.Errorf("q%v = %v, want %v ±3.5%%", q, got, want)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Every bucket's representative value maps back to the bucket, and buckets are ordered.
	prev := time.Duration(-1)
	for i := range maxBucket {
		m := bucketMid(i)
		if bucketOf(m) != i {
			t.Fatalf("bucket %d: mid %v maps to %d", i, m, bucketOf(m))
		}
		if m <= prev {
			t.Fatalf("bucket %d: mid %v not above %v", i, m, prev)
		}
		prev = m
	}
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 {
		t.Error("empty histogram not zero")
	}
	h.Record(time.Hour) // beyond the last bucket: clamped, but Max stays exact
	if h.Quantile(1) != time.Hour {
		t.Errorf("q1 = %v, want 1h", h.Quantile(1))
	}
}
