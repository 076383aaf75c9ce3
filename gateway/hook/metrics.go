package hook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Call outcomes, gateway_hook_calls_total{outcome}.
const (
	outcomeAllow     = "allow"      // decision: 200
	outcomeDeny      = "deny"       // decision: 403
	outcomeError     = "error"      // the call failed; a decision got the fail mode
	outcomeQueueFull = "queue_full" // decision not sent: every worker busy and the queue full
	outcomeOK        = "ok"         // notification batch: 2xx
)

// metrics are the hooks' instrumentation; a nil *metrics counts nothing.
// Series are resolved once per event here, not per call.
type metrics struct {
	calls    [numEvents]map[string]prometheus.Counter
	duration [numEvents]prometheus.Observer
	failures [numEvents]prometheus.Counter
	dropped  [numEvents]prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, events Events, backlog, lag func() float64) *metrics {
	if reg == nil {
		return nil
	}
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_hook_calls_total",
		Help: "Hook calls by event and outcome: allow, deny (decisions answered 200, 403), error (failed: timeout, refused, other status; a decision got the fail mode), queue_full (decision not sent), ok (notification batch answered 2xx)."},
		[]string{"event", "outcome"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gateway_hook_duration_seconds",
		Help:    "Time of one hook HTTP call, answer read included, by event.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 13)}, // 1 ms to 4 s: past the default 2 s timeout
		[]string{"event"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_hook_failures_total",
		Help: "Hook calls that failed (timeout, connection error, unexpected status, unreadable answer), by event; every retry of a notification batch counts."},
		[]string{"event"})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_hook_dropped_total",
		Help: "Events never sent, by event: decisions refused a place in the full queue, presence/disconnect events dropped oldest-first from a full queue, messages gone from history before they were notified."},
		[]string{"event"})
	reg.MustRegister(calls, duration, failures, dropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_hook_queue",
			Help: "Notification events held: presence/disconnect events queued, and the events of the batches being sent or retried."}, backlog),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_hook_cursor_lag",
			Help: "Messages stored but not yet notified, over the rooms the notifier knows to be behind (an estimate: rooms resumed after a restart count from when they are first read)."}, lag),
	)
	m := &metrics{}
	for e := Event(0); e < numEvents; e++ {
		if !events.Has(e) {
			continue
		}
		name := e.String()
		outcomes := []string{outcomeOK, outcomeError}
		if e.IsDecision() {
			outcomes = []string{outcomeAllow, outcomeDeny, outcomeError, outcomeQueueFull}
		}
		m.calls[e] = make(map[string]prometheus.Counter, len(outcomes))
		for _, o := range outcomes {
			m.calls[e][o] = calls.WithLabelValues(name, o) // every series exists from the start, at 0
		}
		m.duration[e] = duration.WithLabelValues(name)
		m.failures[e] = failures.WithLabelValues(name)
		m.dropped[e] = dropped.WithLabelValues(name)
	}
	return m
}

func (m *metrics) call(e Event, outcome string) {
	if m != nil && m.calls[e] != nil {
		m.calls[e][outcome].Inc()
		if outcome == outcomeError {
			m.failures[e].Inc()
		}
	}
}

func (m *metrics) took(e Event, d time.Duration) {
	if m != nil && m.duration[e] != nil {
		m.duration[e].Observe(d.Seconds())
	}
}

func (m *metrics) drop(e Event, n int) {
	if m != nil && m.dropped[e] != nil && n > 0 {
		m.dropped[e].Add(float64(n))
	}
}
