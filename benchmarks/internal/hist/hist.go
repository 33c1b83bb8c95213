// Package hist is a latency histogram with log-linear buckets: every power
// of two is split into 64 equal buckets, so a recorded value is known to
// within 1/64 (about 1.6 %) whatever its size, in a fixed 21 KiB of memory.
//
// A Histogram is not safe for concurrent use: give each goroutine its own
// and Merge them at the end.
package hist

import (
	"math"
	"math/bits"
	"time"
)

const (
	// subBits is log2 of the buckets per power of two.
	subBits = 6
	sub     = 1 << subBits
	// maxShift bounds the recorded range at 2^(maxShift+subBits+1) ns,
	// about 39 hours; larger values land in the last bucket.
	maxShift = 40
	// numBuckets covers values below 2*sub exactly, then sub buckets per
	// power of two up to maxShift.
	numBuckets = (maxShift + 2) * sub
)

// Histogram counts durations in nanoseconds.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

// New returns an empty histogram.
func New() *Histogram {
	return &Histogram{min: math.MaxInt64}
}

// bucket returns the index of the bucket that holds v (v >= 0).
func bucket(v uint64) int {
	if v < 2*sub {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	if shift > maxShift {
		return numBuckets - 1
	}
	// v>>shift is in [sub, 2*sub): its low subBits bits pick the bucket.
	return shift*sub + int(v>>uint(shift))
}

// bounds returns the smallest and largest value that bucket i holds.
func bounds(i int) (lo, hi uint64) {
	if i < 2*sub {
		return uint64(i), uint64(i)
	}
	shift := i/sub - 1
	m := uint64(i - shift*sub)
	return m << uint(shift), (m+1)<<uint(shift) - 1
}

// Record adds one duration. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucket(uint64(v))]++
	h.n++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds every value recorded in o to h.
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

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest recorded value, or 0 if there is none.
func (h *Histogram) Min() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Max returns the largest recorded value, or 0 if there is none.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the mean of the recorded values, or 0 if there is none.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value below which a fraction q (0..1) of the
// recorded values lie: the middle of the bucket that holds the value of
// rank ceil(q*n), kept within the recorded minimum and maximum, which it
// returns exactly for the first and the last rank. It returns 0 for an
// empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(h.n)))
	switch {
	case rank <= 1:
		return time.Duration(h.min)
	case rank >= h.n:
		return time.Duration(h.max)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bounds(i)
			v := int64(lo + (hi-lo)/2)
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
