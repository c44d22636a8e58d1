package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// The latency histogram is log-linear, as HdrHistogram's: every value below
// histLinear ns has its own bucket, and above that each power of two is cut
// into 1<<histSubBits buckets, so a reported value is within 1/128 (0.8 %)
// of a recorded one whatever its size, from nanoseconds to hours, in a fixed
// 58 KiB. Recording is a few shifts and an increment, which keeps the load
// generator cheap: it shares the machine with the cluster it measures.
const (
	histSubBits = 7
	histLinear  = 1 << (histSubBits + 1)
	histBuckets = (64 - histSubBits + 1) << histSubBits
)

// histogram counts durations. It is not safe for concurrent use: each
// client keeps its own and they are merged once the run is over.
type histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	min, max time.Duration
}

// bucketOf is the bucket of v: v itself below histLinear, then the octave
// (shift) and the top histSubBits+1 bits of v, whose leading bit is always 1.
func bucketOf(v uint64) int {
	if v < histLinear {
		return int(v)
	}
	shift := bits.Len64(v) - (histSubBits + 1)
	return shift<<histSubBits + int(v>>shift)
}

// bucketHigh is the largest value that falls in bucket i.
func bucketHigh(i int) uint64 {
	if i < histLinear {
		return uint64(i)
	}
	shift := i>>histSubBits - 1
	mantissa := uint64(i - shift<<histSubBits)
	return (mantissa+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0 // a clock step backwards; not a latency
	}
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
}

// quantile is the smallest recorded value v such that a fraction q of the
// values are <= v, rounded up to its bucket's upper bound (never above the
// largest value recorded): so p99 is never understated. 0 when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(1, min(rank, h.n))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return max(h.min, min(time.Duration(bucketHigh(i)), h.max))
		}
	}
	return h.max
}
