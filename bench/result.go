package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Result is the outcome of one scenario run: its parameters, one Step per
// measured stage (idle ramps and rate ramps have several, the others one),
// and where it ran. Results are written as JSON (--json) and read back by
// `wsbench report` and `wsbench plan`.
type Result struct {
	Scenario string            `json:"scenario"`
	Started  time.Time         `json:"started"`
	Machine  Machine           `json:"machine"`
	Gateway  GatewayInfo       `json:"gateway"`
	Params   map[string]string `json:"params"` // the scenario's flags, as given
	Steps    []Step            `json:"steps"`
	Notes    []string          `json:"notes,omitempty"`
}

// GatewayInfo identifies the gateway under test.
type GatewayInfo struct {
	Addr   string   `json:"addr"`
	PID    int      `json:"pid,omitempty"`
	Commit string   `json:"commit,omitempty"`
	Flags  []string `json:"flags,omitempty"`
}

// Step is one measured stage. Fields that a scenario does not measure stay
// zero and are omitted from JSON.
type Step struct {
	Label    string  `json:"label"`
	Conns    int     `json:"conns"`
	Duration float64 `json:"duration_s,omitempty"`

	// Memory (idle).
	GatewayRSS   int64   `json:"gateway_rss_bytes,omitempty"`
	BytesPerConn float64 `json:"bytes_per_conn,omitempty"` // slope from the previous step
	SockMemPages int64   `json:"sockstat_tcp_mem_pages,omitempty"`
	SocketsInUse int64   `json:"sockstat_tcp_inuse,omitempty"`
	// KernelSlab is the kernel's slab memory (/proc/meminfo Slab) at the
	// step; KernelBytesPerSocket its growth from the previous step over the
	// growth of SocketsInUse, when both grew. Both readings are host-wide:
	// anything else running on the host adds noise.
	KernelSlab           int64   `json:"kernel_slab_bytes,omitempty"`
	KernelBytesPerSocket float64 `json:"kernel_bytes_per_socket,omitempty"`

	// Traffic (fanout, ramp, dm, churn).
	TargetRate float64 `json:"target_msgs_per_s,omitempty"`
	Sent       int64   `json:"sent,omitempty"`
	Expected   int64   `json:"expected_deliveries,omitempty"`
	Delivered  int64   `json:"delivered,omitempty"`
	Gaps       int64   `json:"gaps,omitempty"`
	Duplicates int64   `json:"duplicates,omitempty"`
	Errors     int64   `json:"errors,omitempty"`
	// SlowReaders: members that joined and never read (fanout --slow);
	// they are not among Conns, Expected or the latencies.
	SlowReaders int `json:"slow_readers,omitempty"`

	// Handshakes (connect, churn).
	Handshakes int64 `json:"handshakes,omitempty"`

	// Latency of deliveries (send to receive) or of connects, in µs.
	Latency *Latency `json:"latency,omitempty"`

	// CPU seconds spent during the step by the gateway and by the harness.
	GatewayCPU float64 `json:"gateway_cpu_s,omitempty"`
	BenchCPU   float64 `json:"bench_cpu_s,omitempty"`
	// LoadAvg is the machine's 1-minute load average at the end of the
	// step: on a shared machine, how much else was running.
	LoadAvg float64 `json:"loadavg_1m,omitempty"`

	// Breakdown: where the gateway's part of the latency went (fan-out
	// steps with --metrics).
	Breakdown *Breakdown `json:"breakdown,omitempty"`

	// Timeline: the deliveries received in each second of the step and
	// their latency (kept when the load has slow readers).
	Timeline []TimelineSecond `json:"timeline,omitempty"`
}

// TimelineSecond is one second of a step: deliveries received in it, by
// receipt time, and their latency percentiles in ms.
type TimelineSecond struct {
	T          int     `json:"t_s"` // seconds since the step started
	Deliveries int64   `json:"deliveries"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	// Sampled once or more in the second, the largest: the kernel's TCP
	// memory in pages (the whole machine, /proc/net/sockstat) and the
	// gateway's RSS.
	TCPMemPages int64 `json:"tcp_mem_pages,omitempty"`
	GatewayRSS  int64 `json:"gateway_rss_bytes,omitempty"`
	// SlowOpen: slow readers whose socket was still established (the
	// gateway had neither reset it nor got a FIN through to it).
	SlowOpen int64 `json:"slow_open"`
}

// DeliveredPerSec is the delivery rate of the step.
func (s *Step) DeliveredPerSec() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Delivered) / s.Duration
}

// DeliveriesPerCPUSec is deliveries per gateway CPU-second.
func (s *Step) DeliveriesPerCPUSec() float64 {
	if s.GatewayCPU <= 0 {
		return 0
	}
	return float64(s.Delivered) / s.GatewayCPU
}

// HandshakesPerSec is the connect rate of the step.
func (s *Step) HandshakesPerSec() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Handshakes) / s.Duration
}

// Lost is the number of expected deliveries that did not arrive.
func (s *Step) Lost() int64 {
	if s.Expected > s.Delivered {
		return s.Expected - s.Delivered
	}
	return 0
}

// WriteJSON writes r to path, or to stdout when path is "-".
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// ReadResults reads result files written by WriteJSON.
func ReadResults(paths ...string) ([]*Result, error) {
	var out []*Result
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, &r)
	}
	return out, nil
}
