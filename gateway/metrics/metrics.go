// Package metrics is a node's Prometheus instrumentation: the counters and
// histograms the gateway updates as it works, gauges read from the hub at
// scrape time, and the Go and process collectors, all on one registry per
// node (tests run several nodes in one process).
//
// Nothing here runs per recipient. Fan-out figures come from the hub's own
// atomic counters, which it adds to once per run, and from the hub.Observer
// hooks, called once per pass and per message; the label lookups the gateway
// needs per frame are resolved once, here, into plain counters.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chatgw/gateway/gateway/hub"
)

// Client request types, counted in gateway_messages_in_total{type}; any
// other type is counted as "unknown", a frame that did not decode as
// "invalid".
var inTypes = []string{"join", "leave", "send", "dm", "typing", "read", "history",
	"presence", "refresh", "ping", "unknown", "invalid"}

// Frame types the gateway writes to one client (replies and greetings),
// counted in gateway_messages_out_total{type} beside the fanned-out kinds.
var replyTypes = []string{"welcome", "joined", "left", "ack", "error", "history", "presence", "pong"}

// Error codes of protocol v1, counted in gateway_errors_total{code}.
var errorCodes = []string{"bad_request", "unknown_type", "unauthorized", "forbidden", "not_joined",
	"rate_limited", "too_many_rooms", "unavailable", "internal"}

// Handshake refusal reasons, gateway_handshakes_refused_total{reason}.
var refuseReasons = []string{"draining", "origin", "unauthorized", "bad_request", "max_conns",
	"max_conns_per_ip", "handshake_rate", "upgrade", "timeout", "header_too_large", "hook"}

// Metrics is one node's instrumentation. The zero value is not usable; a
// nil *Metrics is, and counts nothing.
type Metrics struct {
	reg *prometheus.Registry

	opened      prometheus.Counter
	closed      *prometheus.CounterVec
	closedMu    sync.Mutex
	closedBy    map[int]prometheus.Counter
	in          map[string]prometheus.Counter
	out         map[string]prometheus.Counter
	errors      map[string]prometheus.Counter
	refused     map[string]prometheus.Counter
	rateLimited prometheus.Counter
	apiRequests *prometheus.CounterVec

	batch     prometheus.Histogram
	latency   prometheus.Histogram
	queueWait prometheus.Histogram
	write     prometheus.Histogram
	publish   prometheus.Histogram
}

// New makes a node's metrics on a registry of their own, with the Go and
// process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg, closedBy: map[int]prometheus.Counter{}}

	m.opened = prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_connections_opened_total",
		Help: "WebSocket connections accepted (upgraded and welcomed)."})
	m.closed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_connections_closed_total",
		Help: "Connections closed, by the close code the gateway sent or answered (1006: the socket dropped with no close frame)."},
		[]string{"code"})
	m.rateLimited = prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_rate_limited_total",
		Help: "Client frames refused by the per-connection rate limit (with or without an error reply)."})
	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_api_requests_total",
		Help: "Server API requests, by route and HTTP status."}, []string{"route", "status"})
	f(m.opened)
	f(m.closed)
	f(m.rateLimited)
	f(m.apiRequests)
	m.in = counters(reg, "gateway_messages_in_total", "Client frames received, by request type.", "type", inTypes)
	m.out = counters(reg, "gateway_replies_out_total",
		"Frames written to one client (replies, welcome, joined), by type; fanned-out frames are in gateway_messages_out_total.", "type", replyTypes)
	m.errors = counters(reg, "gateway_errors_total", "Error replies sent to clients, by protocol error code.", "code", errorCodes)
	m.refused = counters(reg, "gateway_handshakes_refused_total", "WebSocket handshakes refused, by reason.", "reason", refuseReasons)

	m.batch = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gateway_fanout_batch_messages",
		Help:    "Messages (deliveries queued for a room) a fan-out worker took in one pass.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12)})
	// A delivery's time in the node, in the order it is spent: publish
	// (stored, and fsync'd with the durable store, or Redis's round trip),
	// queue wait (until a fan-out pass takes it), write offset (how far
	// into the pass a member is written). Fine buckets, 50 us to 1.3 s in
	// steps of 1.5x, so a p99 read from them is within 25% of the truth.
	lat := prometheus.ExponentialBuckets(0.00005, 1.5, 26)
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gateway_fanout_latency_seconds",
		Help:    "Time from a message being queued for fan-out to its last write to the members one worker serves.",
		Buckets: lat})
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gateway_fanout_queue_wait_seconds",
		Help:    "Time from a message being queued for fan-out to the start of the pass that writes it (coalescing waits included).",
		Buckets: lat})
	m.write = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gateway_fanout_write_offset_seconds",
		Help:    "Time from the start of a fan-out pass to a member's write, sampled over each pass's members (16 evenly spaced and the last).",
		Buckets: lat})
	m.publish = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gateway_publish_seconds",
		Help:    "Time from a message reaching the node's publish path to its ack: storing it (with fsync under --history-sync always) or Redis's round trip.",
		Buckets: lat})
	f(m.batch)
	f(m.latency)
	f(m.queueWait)
	f(m.write)
	f(m.publish)
	return m
}

func counters(reg *prometheus.Registry, name, help, label string, values []string) map[string]prometheus.Counter {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	reg.MustRegister(vec)
	out := make(map[string]prometheus.Counter, len(values))
	for _, v := range values {
		out[v] = vec.WithLabelValues(v) // every series exists from the start, at 0
	}
	return out
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the node's registry, for collectors added by other parts.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Node registers the gauges and counters read at scrape time: the hub's
// state and counters, and the history store's size (when historySize is
// not nil).
func (m *Metrics) Node(h *hub.Hub, historySize func() float64) {
	gauge := func(name, help string, v func(hub.Stats) int64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return float64(v(h.Stats())) }))
	}
	counter := func(name, help string, v func(hub.Stats) int64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(h.Stats())) }))
	}
	gauge("gateway_connections", "Open WebSocket connections.", func(s hub.Stats) int64 { return s.Connections })
	gauge("gateway_rooms", "Rooms with members (every connection's inbox is one).", func(s hub.Stats) int64 { return s.Rooms })
	gauge("gateway_members", "Room memberships: connections x rooms joined, inboxes included.", func(s hub.Stats) int64 { return s.Memberships })
	counter("gateway_bytes_out_total", "Bytes of fanned-out frames handed to sockets.", func(s hub.Stats) int64 { return s.BytesOut })
	counter("gateway_fanout_writes_total", "Socket writes made by fan-out; below gateway_messages_out_total when frames share writes.", func(s hub.Stats) int64 { return s.Writes })
	counter("gateway_slow_consumer_closes_total", "Connections closed with 4001 for an outbound backlog over --outbound-max-bytes.", func(s hub.Stats) int64 { return s.SlowConsumers })
	for _, k := range hub.Kinds() {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gateway_messages_out_total", Help: "Frames fanned out to room members, by type.",
			ConstLabels: prometheus.Labels{"type": k.String()},
		}, func() float64 { return float64(h.Stats().ByKind[k]) }))
	}
	if historySize != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_history_messages",
			Help: "Messages held in room histories."}, historySize))
	}
}

// MemoryStore is what the embedded history store reports about its bound
// (history.Memory).
type MemoryStore interface {
	Bytes() int64
	Rooms() int64
	Dropped() uint64
}

// DiskStore is what the durable history store reports (history.Disk).
type DiskStore interface {
	DiskBytes() int64   // database file size
	DiskUsed() int64    // of which in use
	DiskAppends() int64 // appends made durable
	DiskSyncs() int64   // fsyncs made for them
	DiskQueued() int    // appends waiting for the disk
}

// Disk registers the durable history store's figures: its size on disk
// (against --history-max-disk), appends and the fsyncs they shared (group
// commit), and the appends waiting for the disk.
func (m *Metrics) Disk(st DiskStore) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_history_disk_bytes",
			Help: "Size of the history database file under --data-dir."},
			func() float64 { return float64(st.DiskBytes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_history_disk_used_bytes",
			Help: "Of which in use (the rest: free pages, reused before the file grows); held under --history-max-disk."},
			func() float64 { return float64(st.DiskUsed()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gateway_history_disk_appends_total",
			Help: "Messages made durable."},
			func() float64 { return float64(st.DiskAppends()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gateway_history_disk_fsyncs_total",
			Help: "fsyncs made for them: appends per fsync is the group commit's gain."},
			func() float64 { return float64(st.DiskSyncs()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_history_disk_queue",
			Help: "Appends waiting for the disk."},
			func() float64 { return float64(st.DiskQueued()) }),
	)
}

// History registers the embedded history store's gauges: what it holds
// against --history-max-bytes, and how many rooms it dropped.
func (m *Metrics) History(st MemoryStore) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_history_bytes",
		Help: "Bytes held by the memory history store (frames and overheads), held under --history-max-bytes."},
		func() float64 { return float64(st.Bytes()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_history_rooms",
		Help: "Rooms and inboxes with history in the memory store."},
		func() float64 { return float64(st.Rooms()) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gateway_history_rooms_dropped_total",
		Help: "Rooms the memory store dropped: idle past --history-ttl, or idle longest when over --history-max-bytes."},
		func() float64 { return float64(st.Dropped()) }))
}

// Observer returns the hub.Observer that feeds the fan-out histograms.
func (m *Metrics) Observer() hub.Observer { return observer{m} }

type observer struct{ m *Metrics }

func (o observer) FanoutPass(messages int)         { o.m.batch.Observe(float64(messages)) }
func (o observer) FanoutLatency(d time.Duration)   { o.m.latency.Observe(d.Seconds()) }
func (o observer) FanoutQueueWait(d time.Duration) { o.m.queueWait.Observe(d.Seconds()) }
func (o observer) FanoutWrite(d time.Duration)     { o.m.write.Observe(d.Seconds()) }

// Published records how long a message took from the publish path to its
// ack.
func (m *Metrics) Published(d time.Duration) {
	if m != nil {
		m.publish.Observe(d.Seconds())
	}
}

// Opened counts an accepted connection.
func (m *Metrics) Opened() {
	if m != nil {
		m.opened.Inc()
	}
}

// Closed counts a closed connection by close code (0: none; counted as 1006).
func (m *Metrics) Closed(code int) {
	if m == nil {
		return
	}
	if code == 0 {
		code = 1006
	}
	m.closedMu.Lock()
	c := m.closedBy[code]
	if c == nil {
		c = m.closed.WithLabelValues(strconv.Itoa(code))
		m.closedBy[code] = c
	}
	m.closedMu.Unlock()
	c.Inc()
}

// In counts a client frame of request type typ.
func (m *Metrics) In(typ string) {
	if m == nil {
		return
	}
	c, ok := m.in[typ]
	if !ok {
		c = m.in["unknown"]
	}
	c.Inc()
}

// Reply counts a frame of type typ written to one client.
func (m *Metrics) Reply(typ string) {
	if m != nil {
		if c, ok := m.out[typ]; ok {
			c.Inc()
		}
	}
}

// Error counts an error reply with protocol code.
func (m *Metrics) Error(code string) {
	if m != nil {
		if c, ok := m.errors[code]; ok {
			c.Inc()
		}
	}
}

// RateLimited counts a frame refused by the rate limit.
func (m *Metrics) RateLimited() {
	if m != nil {
		m.rateLimited.Inc()
	}
}

// Refused counts a refused handshake.
func (m *Metrics) Refused(reason string) {
	if m != nil {
		if c, ok := m.refused[reason]; ok {
			c.Inc()
		}
	}
}

// API counts a server API request.
func (m *Metrics) API(route string, status int) {
	if m != nil {
		m.apiRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	}
}
