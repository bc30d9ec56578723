package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets, HDR style: values below
// 256 ns are exact, and every power-of-two range above is split into 128
// equal buckets, so any reported quantile is within 1/128 (0.8%) of the true
// sample value. It uses a fixed 60 KiB whatever the sample count, so a long
// run at full speed costs no more memory than a short one.
//
// A Histogram is not safe for concurrent use; give each worker its own and
// Merge them.
type Histogram struct {
	counts   []uint64
	n        uint64
	sum      float64
	min, max int64
}

const (
	subBucketBits = 7
	subBuckets    = 1 << subBucketBits // buckets per power of two
	// numBuckets covers every non-negative int64.
	numBuckets = (64-subBucketBits-1)*subBuckets + 2*subBuckets
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, numBuckets), min: math.MaxInt64}
}

// bucketOf returns the bucket index of v >= 0.
func bucketOf(v int64) int {
	u := uint64(v)
	shift := bits.Len64(u) - (subBucketBits + 1)
	if shift < 0 {
		shift = 0
	}
	return shift*subBuckets + int(u>>uint(shift))
}

// bucketBounds returns the smallest and largest values of bucket i.
func bucketBounds(i int) (lo, hi int64) {
	shift := 0
	if i >= 2*subBuckets {
		shift = i/subBuckets - 1
	}
	m := int64(i - shift*subBuckets)
	lo = m << uint(shift)
	hi = lo + (int64(1) << uint(shift)) - 1
	return lo, hi
}

// Record adds one sample; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds every sample of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count returns the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest sample (0 when empty).
func (h *Histogram) Min() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Max returns the largest sample (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the mean sample (exact).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the sample at quantile q in [0, 1] under the nearest-rank
// definition (the smallest sample with at least q of the samples at or below
// it), reported as the upper bound of its bucket, clamped to [Min, Max]:
// never below the true value and at most 0.8% above it. An empty histogram
// returns 0.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketBounds(i)
			return time.Duration(min(max(hi, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Summary returns the usual percentiles in milliseconds.
func (h *Histogram) Summary() Latency {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	return Latency{
		Count: h.n,
		Min:   ms(h.Min()),
		Mean:  ms(h.Mean()),
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P95:   ms(h.Quantile(0.95)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.Max()),
	}
}

// Latency summarizes a latency distribution; every figure is in milliseconds
// (microsecond resolution).
type Latency struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"minMs"`
	Mean  float64 `json:"meanMs"`
	P50   float64 `json:"p50Ms"`
	P90   float64 `json:"p90Ms"`
	P95   float64 `json:"p95Ms"`
	P99   float64 `json:"p99Ms"`
	P999  float64 `json:"p999Ms"`
	Max   float64 `json:"maxMs"`
}
