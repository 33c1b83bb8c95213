package hist

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	// Every value lands in a bucket whose bounds hold it, buckets are in
	// order, and a bucket is at most 1/64 of its lower bound wide.
	prevHi := uint64(0)
	for i := 0; i < numBuckets; i++ {
		lo, hi := bounds(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, prevHi+1)
		}
		if lo > 2*sub && float64(hi-lo+1)/float64(lo) > 1.0/sub+1e-12 {
			t.Fatalf("bucket %d [%d,%d] is wider than 1/%d of its start", i, lo, hi, sub)
		}
		for _, v := range []uint64{lo, hi, lo + (hi-lo)/2} {
			if got := bucket(v); got != i {
				t.Fatalf("bucket(%d) = %d, want %d", v, got, i)
			}
		}
		prevHi = hi
	}
	if got := bucket(math.MaxUint64); got != numBuckets-1 {
		t.Fatalf("bucket(MaxUint64) = %d, want the last bucket", got)
	}
}

func TestQuantile(t *testing.T) {
	uniform := func(h *Histogram) {
		// 1 µs .. 100 ms in 1 µs steps, shuffled.
		vals := make([]int, 100000)
		for i := range vals {
			vals[i] = i + 1
		}
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
		for _, v := range vals {
			h.Record(time.Duration(v) * time.Microsecond)
		}
	}
	bimodal := func(h *Histogram) {
		// 990 fast calls at 50 µs, 10 slow ones at 20 ms.
		for range 990 {
			h.Record(50 * time.Microsecond)
		}
		for range 10 {
			h.Record(20 * time.Millisecond)
		}
	}
	tests := []struct {
		name   string
		fill   func(*Histogram)
		q      float64
		want   time.Duration
		relErr float64
	}{
		{"uniform/p50", uniform, 0.50, 50 * time.Millisecond, 1.0 / 64},
		{"uniform/p99", uniform, 0.99, 99 * time.Millisecond, 1.0 / 64},
		{"uniform/p999", uniform, 0.999, 99900 * time.Microsecond, 1.0 / 64},
		{"uniform/p0", uniform, 0, time.Microsecond, 0},
		{"uniform/p100", uniform, 1, 100 * time.Millisecond, 0},
		{"bimodal/p50", bimodal, 0.50, 50 * time.Microsecond, 0},
		{"bimodal/p99", bimodal, 0.99, 50 * time.Microsecond, 0},
		{"bimodal/p999", bimodal, 0.999, 20 * time.Millisecond, 0},
		{"small exact values", func(h *Histogram) {
			for v := range 100 {
				h.Record(time.Duration(v))
			}
		}, 0.5, 49, 0},
		{"empty", func(*Histogram) {}, 0.99, 0, 0},
		{"negative counts as zero", func(h *Histogram) { h.Record(-5) }, 0.5, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New()
			tt.fill(h)
			got := h.Quantile(tt.q)
			diff := math.Abs(float64(got - tt.want))
			if diff > tt.relErr*float64(tt.want) {
				t.Fatalf("Quantile(%v) = %v, want %v within %.2f%%", tt.q, got, tt.want, 100*tt.relErr)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	// Per-caller histograms merged give the same answers as one histogram
	// that saw every value.
	all := New()
	parts := []*Histogram{New(), New(), New()}
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 30000 {
		d := time.Duration(r.ExpFloat64() * float64(200*time.Microsecond))
		all.Record(d)
		parts[i%len(parts)].Record(d)
	}
	merged := New()
	for _, p := range parts {
		merged.Merge(p)
	}
	merged.Merge(New()) // an empty one changes nothing
	if merged.Count() != all.Count() || merged.Min() != all.Min() || merged.Max() != all.Max() {
		t.Fatalf("merged count/min/max = %d/%v/%v, want %d/%v/%v",
			merged.Count(), merged.Min(), merged.Max(), all.Count(), all.Min(), all.Max())
	}
	if d := merged.Mean() - all.Mean(); d < -time.Nanosecond || d > time.Nanosecond {
		t.Fatalf("merged mean %v, want %v", merged.Mean(), all.Mean())
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		if merged.Quantile(q) != all.Quantile(q) {
			t.Fatalf("q%v: merged %v, want %v", q, merged.Quantile(q), all.Quantile(q))
		}
	}
	// An exponential distribution's median is ln 2 times its mean.
	want := time.Duration(math.Round(math.Ln2 * float64(200*time.Microsecond)))
	if got := merged.Quantile(0.5); math.Abs(float64(got-want)) > 0.05*float64(want) {
		t.Fatalf("median of Exp(200µs) = %v, want about %v", got, want)
	}
}

func BenchmarkRecord(b *testing.B) {
	h := New()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i & 0xfffff))
	}
}
