package bench

import (
	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram records latencies in microseconds, from 1 µs to 60 s with 3
// significant digits. It is not safe for concurrent use: each client engine
// keeps its own and they are merged at the end.
type Histogram struct{ h *hdrhistogram.Histogram }

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(1, 60_000_000, 3)}
}

// Record adds one latency in µs (clamped to the histogram's range).
func (h *Histogram) Record(us int64) {
	if us < 1 {
		us = 1
	}
	if us > 60_000_000 {
		us = 60_000_000
	}
	_ = h.h.RecordValue(us)
}

// Merge adds every value of o into h.
func (h *Histogram) Merge(o *Histogram) { h.h.Merge(o.h) }

// Count returns the number of recorded values.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Latency is a histogram's summary, plus the histogram itself encoded so
// that results of several worker processes can be merged exactly.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p999_us"`
	Max   float64 `json:"max_us"`
	Mean  float64 `json:"mean_us"`
	// Snapshot is the full histogram, for merging.
	Snapshot *hdrhistogram.Snapshot `json:"snapshot,omitempty"`
}

// Summary returns h's percentiles.
func (h *Histogram) Summary() *Latency {
	return &Latency{
		Count:    h.h.TotalCount(),
		P50:      float64(h.h.ValueAtQuantile(50)),
		P90:      float64(h.h.ValueAtQuantile(90)),
		P99:      float64(h.h.ValueAtQuantile(99)),
		P999:     float64(h.h.ValueAtQuantile(99.9)),
		Max:      float64(h.h.Max()),
		Mean:     h.h.Mean(),
		Snapshot: h.h.Export(),
	}
}

// MergeLatencies combines summaries from several workers into one, through
// their snapshots.
func MergeLatencies(ls ...*Latency) *Latency {
	sum := NewHistogram()
	for _, l := range ls {
		if l == nil || l.Snapshot == nil {
			continue
		}
		sum.h.Merge(hdrhistogram.Import(l.Snapshot))
	}
	return sum.Summary()
}
