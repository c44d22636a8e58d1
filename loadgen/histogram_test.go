package loadgen

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestHistogramBucketsTileTheRange(t *testing.T) {
	for i := range histBuckets - 1 {
		high := bucketHigh(i)
		if got := bucketOf(high); got != i {
			t.Fatalf("bucketOf(bucketHigh(%d) = %d) = %d", i, high, got)
		}
		if got := bucketOf(high + 1); got != i+1 {
			t.Fatalf("bucketOf(bucketHigh(%d)+1 = %d) = %d, want %d", i, high+1, got, i+1)
		}
	}
	if got := bucketOf(^uint64(0)); got != histBuckets-1 {
		t.Fatalf("the largest value lands in bucket %d, want the last, %d", got, histBuckets-1)
	}
}

func TestHistogramBucketWidthIsWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := r.Uint64() >> r.IntN(64)
		high := bucketHigh(bucketOf(v))
		if high < v {
			t.Fatalf("value %d reported as %d: below itself", v, high)
		}
		if float64(high-v) > float64(v)/(1<<histSubBits) {
			t.Fatalf("value %d reported as %d: more than 1/%d above", v, high, 1<<histSubBits)
		}
	}
}

func TestHistogramQuantilesExactForSmallValues(t *testing.T) {
	h := new(histogram)
	if h.quantile(0.5) != 0 || h.max != 0 {
		t.Fatalf("empty histogram: p50 %s max %s, want 0", h.quantile(0.5), h.max)
	}
	for v := 100; v >= 1; v-- { // order must not matter
		h.record(time.Duration(v))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.01, 1}, {0.5, 50}, {0.9, 90}, {0.99, 99}, {0.999, 100}, {1, 100}} {
		if got := h.quantile(c.q); got != c.want {
			t.Errorf("q%g of 1..100 = %d, want %d", c.q, got, c.want)
		}
	}
	if h.n != 100 || h.min != 1 || h.max != 100 {
		t.Errorf("n %d min %d max %d, want 100 1 100", h.n, h.min, h.max)
	}
}

func TestHistogramQuantilesOfMilliseconds(t *testing.T) {
	// 1 µs .. 10 ms in steps of 1 µs: the q-quantile is q × 10 ms, reported
	// at most 1/128 above and never below.
	h := new(histogram)
	for i := 1; i <= 10000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5 * time.Millisecond}, {0.9, 9 * time.Millisecond}, {0.99, 9900 * time.Microsecond},
		{0.999, 9990 * time.Microsecond}, {1, 10 * time.Millisecond}} {
		got := h.quantile(c.q)
		if got < c.want || float64(got-c.want) > float64(c.want)/(1<<histSubBits) {
			t.Errorf("q%g = %s, want %s (+ at most 1/%d)", c.q, got, c.want, 1<<histSubBits)
		}
	}
	if h.quantile(1) != 10*time.Millisecond {
		t.Errorf("q1 = %s, want exactly the max, 10ms", h.quantile(1))
	}
}

func TestHistogramMergeEqualsOneHistogram(t *testing.T) {
	all, a, b := new(histogram), new(histogram), new(histogram)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 5000 {
		d := time.Duration(r.Int64N(int64(time.Second)))
		all.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	merged := new(histogram)
	merged.merge(a)
	merged.merge(new(histogram)) // an idle client's
	merged.merge(b)
	if *merged != *all {
		t.Fatalf("merged: n %d min %s max %s; one histogram: n %d min %s max %s",
			merged.n, merged.min, merged.max, all.n, all.min, all.max)
	}
}
