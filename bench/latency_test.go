package bench

import (
	"math"
	"path/filepath"
	"testing"
	"time"
)

// near reports whether got is within HDR's 3 significant digits of want:
// a relative error of at most 1/1000 (plus one unit for tiny values).
func nearHDR(got, want float64) bool {
	return math.Abs(got-want) <= want/1000+1
}

func checkNear(t *testing.T, name string, got, want float64) {
	t.Helper()
	if !nearHDR(got, want) {
		t.Errorf("%s = %v, want %v within 0.1%%", name, got, want)
	}
}

func TestHistogramUniform(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 100_000; v++ {
		h.Record(v)
	}
	l := h.Summary()
	if l.Count != 100_000 || h.Count() != 100_000 {
		t.Fatalf("count = %d/%d, want 100000", l.Count, h.Count())
	}
	checkNear(t, "p50", l.P50, 50_000)
	checkNear(t, "p90", l.P90, 90_000)
	checkNear(t, "p99", l.P99, 99_000)
	checkNear(t, "p99.9", l.P999, 99_900)
	checkNear(t, "max", l.Max, 100_000)
	checkNear(t, "mean", l.Mean, 50_000.5)
	// A percentile never reports less than the true value: HDR returns the
	// highest value equivalent to the bucket.
	if l.P99 < 99_000 {
		t.Errorf("p99 = %v, below the true 99000", l.P99)
	}
}

func TestHistogramBimodal(t *testing.T) {
	// 95% of deliveries at 1 ms, 5% at 80 ms: p50 and p90 sit on the fast
	// mode, p99 and p99.9 on the slow one.
	h := NewHistogram()
	for i := 0; i < 95_000; i++ {
		h.Record(1_000)
	}
	for i := 0; i < 5_000; i++ {
		h.Record(80_000)
	}
	l := h.Summary()
	checkNear(t, "p50", l.P50, 1_000)
	checkNear(t, "p90", l.P90, 1_000)
	checkNear(t, "p99", l.P99, 80_000)
	checkNear(t, "p99.9", l.P999, 80_000)
	checkNear(t, "max", l.Max, 80_000)
	checkNear(t, "mean", l.Mean, 0.95*1_000+0.05*80_000)
}

func TestHistogramClamps(t *testing.T) {
	h := NewHistogram()
	h.Record(0)
	h.Record(-5)
	h.Record(120_000_000) // 120 s, above the 60 s range
	l := h.Summary()
	if l.Count != 3 {
		t.Fatalf("count = %d, want 3 (out-of-range values are clamped, not dropped)", l.Count)
	}
	checkNear(t, "p50", l.P50, 1)
	checkNear(t, "max", l.Max, 60_000_000)
}

// halves records 1..n µs (skewed by a square so the halves differ in shape)
// into two histograms and into one of the whole.
func splitHistograms(n int) (a, b, whole *Histogram) {
	a, b, whole = NewHistogram(), NewHistogram(), NewHistogram()
	for i := 1; i <= n; i++ {
		v := int64(i*i/n + 1)
		whole.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	return a, b, whole
}

func sameLatency(t *testing.T, got, want *Latency) {
	t.Helper()
	if got.Count != want.Count || got.P50 != want.P50 || got.P90 != want.P90 ||
		got.P99 != want.P99 || got.P999 != want.P999 || got.Max != want.Max {
		t.Errorf("merged = {n=%d p50=%v p90=%v p99=%v p99.9=%v max=%v}, whole = {n=%d p50=%v p90=%v p99=%v p99.9=%v max=%v}",
			got.Count, got.P50, got.P90, got.P99, got.P999, got.Max,
			want.Count, want.P50, want.P90, want.P99, want.P999, want.Max)
	}
	if math.Abs(got.Mean-want.Mean) > 1e-9*want.Mean {
		t.Errorf("merged mean = %v, whole %v", got.Mean, want.Mean)
	}
}

func TestMergeLatenciesEqualsWhole(t *testing.T) {
	a, b, whole := splitHistograms(200_000)
	merged := MergeLatencies(a.Summary(), nil, b.Summary())
	sameLatency(t, merged, whole.Summary())

	// Histogram.Merge agrees with the snapshot path.
	a.Merge(b)
	sameLatency(t, a.Summary(), whole.Summary())
}

func TestMergeLatenciesEmpty(t *testing.T) {
	l := MergeLatencies()
	if l.Count != 0 || l.P99 != 0 || l.Max != 0 || l.Mean != 0 {
		t.Errorf("empty merge = %+v, want zeros", l)
	}
	l = MergeLatencies(&Latency{Count: 5, P99: 7}) // a summary without snapshot adds nothing
	if l.Count != 0 {
		t.Errorf("merge of a snapshot-less summary counted %d values", l.Count)
	}
}

// TestResultJSONMerge is the multi-worker path: each worker writes its
// result with a histogram snapshot, the parent reads them back and merges,
// and the merge is exactly the histogram of all deliveries.
func TestResultJSONMerge(t *testing.T) {
	a, b, whole := splitHistograms(50_000)
	dir := t.TempDir()
	var paths []string
	for i, h := range []*Histogram{a, b} {
		r := &Result{
			Scenario: "fanout",
			Started:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Machine:  Machine{CPU: "test", Cores: 2},
			Params:   map[string]string{"rooms": "1", "members": "2000"},
			Steps:    []Step{{Label: "s1", Conns: 1000, Delivered: h.Count(), Latency: h.Summary()}},
		}
		p := filepath.Join(dir, "w"+string(rune('0'+i))+".json")
		if err := r.WriteJSON(p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	rs, err := ReadResults(paths...)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("read %d results, want 2", len(rs))
	}
	var ls []*Latency
	for _, r := range rs {
		if r.Steps[0].Latency == nil || r.Steps[0].Latency.Snapshot == nil {
			t.Fatal("snapshot lost in the JSON round trip")
		}
		ls = append(ls, r.Steps[0].Latency)
	}
	// The summaries themselves survive the round trip.
	sameLatency(t, ls[0], a.Summary())
	sameLatency(t, MergeLatencies(ls...), whole.Summary())
}
