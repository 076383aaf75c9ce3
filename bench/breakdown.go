package bench

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Breakdown splits a step's delivery latency into the parts the gateway
// measures itself, read from the histograms of its /metrics before and
// after the step: publish (storing, with fsync under the durable store's
// default, or Redis's round trip), queue wait (until a fan-out pass takes
// the message, coalescing holds included) and write offset (how far into
// the pass a member's write came). What the harness measured beyond their
// sum is the socket and the client: reading, parsing, and waiting for a
// core. Percentiles are read from the histograms' buckets (steps of 1.5x),
// so they are within a bucket of the truth. Durations in µs.
type Breakdown struct {
	Publish     *Quantiles `json:"publish,omitempty"`
	QueueWait   *Quantiles `json:"queue_wait,omitempty"`
	WriteOffset *Quantiles `json:"write_offset,omitempty"`
	// BenchBusy is the harness's CPU time over the step's wall time, per
	// poller: near 1, the client, not the gateway, is what binds.
	BenchBusy float64 `json:"bench_busy,omitempty"`
}

// Quantiles are a histogram's p50, p90 and p99 in µs, and its count.
type Quantiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
}

// breakdownSeries are the gateway histograms a Breakdown reads.
var breakdownSeries = []string{"gateway_publish_seconds", "gateway_fanout_queue_wait_seconds", "gateway_fanout_write_offset_seconds"}

// buckets is one histogram's cumulative counts by upper bound (seconds).
type buckets struct {
	le    []float64
	count []uint64
}

// scrapeHistograms reads the named histograms from a Prometheus text
// endpoint.
func scrapeHistograms(url string, names []string) (map[string]buckets, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", url, err)
	}
	return histograms(fams, names), nil
}

func histograms(fams map[string]*dto.MetricFamily, names []string) map[string]buckets {
	out := map[string]buckets{}
	for _, n := range names {
		f := fams[n]
		if f == nil || len(f.Metric) == 0 || f.Metric[0].Histogram == nil {
			continue
		}
		var b buckets
		for _, bk := range f.Metric[0].Histogram.Bucket {
			b.le = append(b.le, bk.GetUpperBound())
			b.count = append(b.count, bk.GetCumulativeCount())
		}
		out[n] = b
	}
	return out
}

// minus returns the observations made between before and b.
func (b buckets) minus(before buckets) buckets {
	out := buckets{le: b.le, count: make([]uint64, len(b.count))}
	for i := range b.count {
		out.count[i] = b.count[i]
		if i < len(before.count) {
			out.count[i] -= before.count[i]
		}
	}
	return out
}

// quantiles reads p50, p90 and p99 off the buckets, interpolating within
// the bucket each falls in (Prometheus's histogram_quantile does the same).
func (b buckets) quantiles() *Quantiles {
	if len(b.count) == 0 || b.count[len(b.count)-1] == 0 {
		return nil
	}
	total := b.count[len(b.count)-1]
	q := func(p float64) float64 {
		rank := p * float64(total)
		i := sort.Search(len(b.count), func(i int) bool { return float64(b.count[i]) >= rank })
		if i >= len(b.le) {
			i = len(b.le) - 1
		}
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = b.le[i-1], float64(b.count[i-1])
		}
		hi := b.le[i]
		if math.IsInf(hi, 1) { // past the last bound: all we know is its lower end
			return lo * 1e6
		}
		in := float64(b.count[i]) - below
		if in <= 0 {
			return hi * 1e6
		}
		return (lo + (hi-lo)*(rank-below)/in) * 1e6
	}
	return &Quantiles{Count: int64(total), P50: q(0.5), P90: q(0.9), P99: q(0.99)}
}

// breakdownOf makes a Breakdown from scrapes before and after a step.
func breakdownOf(before, after map[string]buckets) *Breakdown {
	part := func(name string) *Quantiles {
		a, ok := after[name]
		if !ok {
			return nil
		}
		return a.minus(before[name]).quantiles()
	}
	b := &Breakdown{
		Publish:     part("gateway_publish_seconds"),
		QueueWait:   part("gateway_fanout_queue_wait_seconds"),
		WriteOffset: part("gateway_fanout_write_offset_seconds"),
	}
	if b.Publish == nil && b.QueueWait == nil && b.WriteOffset == nil {
		return nil
	}
	return b
}

// String is the breakdown on one line: each part's p50 / p99 in ms, and
// how busy the harness was.
func (b *Breakdown) String() string {
	part := func(name string, q *Quantiles) string {
		if q == nil {
			return name + " -"
		}
		return fmt.Sprintf("%s %.1f / %.1f", name, q.P50/1000, q.P99/1000)
	}
	return fmt.Sprintf("%s, %s, %s ms (p50 / p99); harness busy %.0f%% of its pollers' time",
		part("publish", b.Publish), part("queue wait", b.QueueWait), part("write offset", b.WriteOffset), 100*b.BenchBusy)
}
