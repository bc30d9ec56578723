package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	prevHi := int64(-1)
	for i := 0; i < numBuckets; i++ {
		lo, hi := bucketBounds(i)
		if lo < 0 || hi < lo { // past int64
			break
		}
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d: gap or overlap", i, lo, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d,%d]: bucketOf(lo)=%d bucketOf(hi)=%d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= 256 && float64(hi-lo+1)/float64(lo) > 1.0/128+1e-12 {
			t.Fatalf("bucket %d [%d,%d] wider than 1/128 of its values", i, lo, hi)
		}
		prevHi = hi
	}
	if b := bucketOf(math.MaxInt64); b >= numBuckets {
		t.Fatalf("bucketOf(MaxInt64) = %d, numBuckets %d", b, numBuckets)
	}
}

// exactQuantile is the nearest-rank quantile of sorted samples.
func exactQuantile(sorted []int64, q float64) int64 {
	if q <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestQuantileMatchesExact(t *testing.T) {
	dists := map[string]func(r *rand.Rand) int64{
		"Uniform1ms":   func(r *rand.Rand) int64 { return r.Int64N(int64(time.Millisecond)) },
		"LogNormal":    func(r *rand.Rand) int64 { return int64(math.Exp(r.NormFloat64()*1.5 + 13)) },
		"Bimodal":      func(r *rand.Rand) int64 { return []int64{200e3, 40e6}[r.IntN(2)] + r.Int64N(1000) },
		"SmallExact":   func(r *rand.Rand) int64 { return r.Int64N(200) },
		"HeavyTailSec": func(r *rand.Rand) int64 { return int64(1e6 / (r.Float64() + 1e-4)) },
	}
	qs := []float64{0, 0.001, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			h := NewHistogram()
			var xs []int64
			var sum float64
			for range 20000 {
				v := gen(r)
				xs = append(xs, v)
				sum += float64(v)
				h.Record(time.Duration(v))
			}
			slices.Sort(xs)
			for _, q := range qs {
				want := exactQuantile(xs, q)
				got := int64(h.Quantile(q))
				if got < want {
					t.Errorf("q%v = %d, below the true %d", q, got, want)
				}
				if want >= 256 && float64(got-want)/float64(want) > 1.0/128 {
					t.Errorf("q%v = %d, true %d: error %.4f > 1/128", q, got, want, float64(got-want)/float64(want))
				}
				if want < 256 && got != want {
					t.Errorf("q%v = %d, want exactly %d below 256 ns", q, got, want)
				}
			}
			if h.Min() != time.Duration(xs[0]) || h.Max() != time.Duration(xs[len(xs)-1]) {
				t.Errorf("min/max = %d/%d, want %d/%d", h.Min(), h.Max(), xs[0], xs[len(xs)-1])
			}
			if got, want := float64(h.Mean()), sum/float64(len(xs)); math.Abs(got-want) > 1 {
				t.Errorf("mean = %v, want %v", got, want)
			}
		})
	}
}

func TestHistogramEdgeCases(t *testing.T) {
	t.Run("Empty", func(t *testing.T) {
		h := NewHistogram()
		if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 || h.Count() != 0 {
			t.Errorf("empty histogram reports non-zero figures")
		}
	})
	t.Run("Single", func(t *testing.T) {
		h := NewHistogram()
		h.Record(1234567 * time.Nanosecond)
		for _, q := range []float64{0, 0.5, 0.99, 1} {
			if got := h.Quantile(q); got != 1234567 {
				t.Errorf("q%v = %d, want the only sample 1234567 (clamped to max)", q, got)
			}
		}
	})
	t.Run("Negative", func(t *testing.T) {
		h := NewHistogram()
		h.Record(-time.Second)
		if h.Max() != 0 || h.Count() != 1 {
			t.Errorf("negative sample: max %v count %d, want 0 and 1", h.Max(), h.Count())
		}
	})
	t.Run("Merge", func(t *testing.T) {
		a, b, all := NewHistogram(), NewHistogram(), NewHistogram()
		for i := range 1000 {
			d := time.Duration(i) * time.Microsecond
			if i%3 == 0 {
				a.Record(d)
			} else {
				b.Record(d)
			}
			all.Record(d)
		}
		a.Merge(b)
		a.Merge(NewHistogram())
		if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() {
			t.Fatalf("merged count/min/max %d/%v/%v, want %d/%v/%v", a.Count(), a.Min(), a.Max(), all.Count(), all.Min(), all.Max())
		}
		for _, q := range []float64{0.1, 0.5, 0.99} {
			if a.Quantile(q) != all.Quantile(q) {
				t.Errorf("q%v merged %v, want %v", q, a.Quantile(q), all.Quantile(q))
			}
		}
	})
	t.Run("Summary", func(t *testing.T) {
		h := NewHistogram()
		for i := 1; i <= 100; i++ {
			h.Record(time.Duration(i) * time.Millisecond)
		}
		s := h.Summary()
		if s.Count != 100 || s.Max != 100 || s.Min != 1 {
			t.Errorf("summary %+v", s)
		}
		// Nearest rank: p50 is the 50th sample, p99 the 99th (within 1/128).
		if s.P50 < 50 || s.P50 > 50*1.008 || s.P99 < 99 || s.P99 > 99*1.008 {
			t.Errorf("p50 %v p99 %v, want 50 and 99 within 0.8%%", s.P50, s.P99)
		}
	})
}
