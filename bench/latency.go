package bench

import (
	"sync"
	"sync/atomic"
	"time"

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

// timeline keeps a coarse latency histogram per second of a step. The zero
// value records nothing until start.
type timeline struct {
	on    atomic.Bool // recording: lets record skip the lock when off
	mu    sync.Mutex
	t0    int64 // Unix ns of the step's start; 0: not recording
	hists []*hdrhistogram.Histogram
	// Per second, the largest kernel TCP memory (pages, whole machine)
	// and gateway RSS sampled in it, and the fewest slow readers open.
	tcpMem, rss, slowOpen []int64
}

// timelineMaxSeconds bounds a timeline (and its memory, ~5 KB a second).
const timelineMaxSeconds = 3600

func (t *timeline) start(at time.Time) {
	t.mu.Lock()
	t.t0, t.hists, t.tcpMem, t.rss, t.slowOpen = at.UnixNano(), nil, nil, nil, nil
	t.on.Store(true)
	t.mu.Unlock()
}

// sample records the machine's TCP memory, the gateway's RSS (pid 0: not
// read) and the slow readers still open (-1: none dialled) for the second
// now falls in.
func (t *timeline) sample(now time.Time, pid, slowOpen int) {
	if !t.on.Load() {
		return
	}
	t.mu.Lock()
	t0 := t.t0
	t.mu.Unlock()
	if t0 == 0 {
		return
	}
	_, mem := SockStat()
	var rss int64
	if pid > 0 {
		rss = ProcessRSS(pid)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	sec := int((now.UnixNano() - t.t0) / int64(time.Second))
	if t.t0 == 0 || sec < 0 || sec >= timelineMaxSeconds {
		return
	}
	for len(t.tcpMem) <= sec {
		t.tcpMem, t.rss, t.slowOpen = append(t.tcpMem, 0), append(t.rss, 0), append(t.slowOpen, -1)
	}
	t.tcpMem[sec], t.rss[sec] = max(t.tcpMem[sec], mem), max(t.rss[sec], rss)
	if slowOpen >= 0 && (t.slowOpen[sec] < 0 || int64(slowOpen) < t.slowOpen[sec]) {
		t.slowOpen[sec] = int64(slowOpen)
	}
}

// record adds a latency of us µs for a delivery received at now (Unix ns).
func (t *timeline) record(now, us int64) {
	if !t.on.Load() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.t0 == 0 || now < t.t0 {
		return
	}
	sec := int((now - t.t0) / int64(time.Second))
	if sec >= timelineMaxSeconds {
		return
	}
	for len(t.hists) <= sec {
		t.hists = append(t.hists, nil)
	}
	h := t.hists[sec]
	if h == nil {
		h = hdrhistogram.New(1, 60_000_000, 2)
		t.hists[sec] = h
	}
	_ = h.RecordValue(min(max(us, 1), 60_000_000))
}

// stop ends recording and returns one entry per second (nil if it was not
// recording).
func (t *timeline) stop() []TimelineSecond {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.t0 == 0 {
		return nil
	}
	out := make([]TimelineSecond, max(len(t.hists), len(t.tcpMem)))
	for i := range out {
		out[i].T = i
		switch {
		case i < len(t.tcpMem) && (t.slowOpen[i] >= 0 || t.tcpMem[i] > 0 || t.rss[i] > 0):
			out[i].TCPMemPages, out[i].GatewayRSS = t.tcpMem[i], t.rss[i]
			out[i].SlowOpen = max(t.slowOpen[i], 0)
		case i > 0: // not sampled in this second: the last sample stands
			out[i].TCPMemPages, out[i].GatewayRSS, out[i].SlowOpen = out[i-1].TCPMemPages, out[i-1].GatewayRSS, out[i-1].SlowOpen
		}
		if i >= len(t.hists) || t.hists[i] == nil {
			continue
		}
		h := t.hists[i]
		out[i].Deliveries = h.TotalCount()
		out[i].P50 = float64(h.ValueAtQuantile(50)) / 1000
		out[i].P99 = float64(h.ValueAtQuantile(99)) / 1000
		out[i].Max = float64(h.Max()) / 1000
	}
	t.t0, t.hists, t.tcpMem, t.rss, t.slowOpen = 0, nil, nil, nil, nil
	t.on.Store(false)
	return out
}
