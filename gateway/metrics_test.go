package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/internal/redistest"
	"github.com/chatgw/gateway/internal/wstest"
)

// scrape reads /metrics and parses it with Prometheus's own text parser.
func (n *node) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + n.srv.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// value returns the sum of the series of name whose labels include labels
// ("k=v" each); histograms give their sample count. A series that does not
// exist yet (a label value never seen) is 0.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
next:
	for _, m := range f.Metric {
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			ok := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					ok = true
				}
			}
			if !ok {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// TestMetricsFollowASession scripts a session (join, send, rate limited,
// closed slow) and checks each counter moved by what the session did.
func TestMetricsFollowASession(t *testing.T) {
	const burst = 12
	n := startNode(t, func(c *gateway.Config) {
		c.Rate, c.Burst = 0.5, burst
		c.OutboundMaxBytes = 64 << 10
		c.APIKey = "k"
	})
	before := n.scrape(t)
	names := []string{"go_goroutines", "process_resident_memory_bytes", "gateway_connections",
		"gateway_connections_opened_total", "gateway_messages_in_total", "gateway_replies_out_total",
		"gateway_messages_out_total", "gateway_errors_total", "gateway_rate_limited_total",
		"gateway_handshakes_refused_total", "gateway_slow_consumer_closes_total", "gateway_bytes_out_total",
		"gateway_rooms", "gateway_members",
		"gateway_fanout_batch_messages", "gateway_fanout_latency_seconds", "gateway_fanout_queue_wait_seconds",
		"gateway_fanout_write_offset_seconds", "gateway_publish_seconds"}
	// Mode difference (the README's metrics table): Redis holds a cluster's
	// history and has no cheap count of it, so cluster mode exports no
	// gateway_history_messages rather than a made-up value.
	if !memoryStore(t) {
		if before["gateway_history_messages"] != nil {
			t.Error("/metrics has gateway_history_messages in cluster mode")
		}
	} else {
		names = append(names, "gateway_history_messages")
	}
	for _, name := range names {
		if before[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	delta := func(after map[string]*dto.MetricFamily, name string, labels ...string) float64 {
		return value(t, after, name, labels...) - value(t, before, name, labels...)
	}

	alice, bob := n.dial(t, "alice"), n.dial(t, "bob")
	alice.Join("general")
	bob.Join("general")
	for i := 0; i < 3; i++ {
		alice.SendText("general", fmt.Sprint("hello ", i))
	}
	for i := 0; i < 3; i++ {
		bob.WaitFor("message", nil)
		alice.WaitFor("message", nil) // her own copy: it may come after her ack
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"gateway_connections", nil, 2},
		{"gateway_connections_opened_total", nil, 2},
		{"gateway_messages_in_total", []string{"type=join"}, 2},
		{"gateway_messages_in_total", []string{"type=send"}, 3},
		{"gateway_replies_out_total", []string{"type=ack"}, 3},
		{"gateway_replies_out_total", []string{"type=welcome"}, 2},
		{"gateway_replies_out_total", []string{"type=joined"}, 4}, // inboxes + general
		{"gateway_messages_out_total", []string{"type=message"}, 6},
	}
	if memoryStore(t) {
		checks = append(checks, struct {
			name   string
			labels []string
			want   float64
		}{"gateway_history_messages", nil, 3})
	}
	// A fan-out worker counts a pass once it has written all of it: the
	// counters may trail the frames the clients read by a moment.
	var m map[string]*dto.MetricFamily
	var wrong []string
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m, wrong = n.scrape(t), nil
		for _, c := range checks {
			if got := delta(m, c.name, c.labels...); got != c.want {
				wrong = append(wrong, fmt.Sprintf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want))
			}
		}
		// One observation per message fanned out: 3 sends and the
		// presence events of the two joins.
		for _, name := range []string{"gateway_fanout_latency_seconds", "gateway_fanout_queue_wait_seconds"} {
			if got := delta(m, name); got != 5 {
				wrong = append(wrong, fmt.Sprintf("%s count moved by %v, want 5", name, got))
			}
		}
		// Acks: one per send.
		if got := delta(m, "gateway_publish_seconds"); got != 3 {
			wrong = append(wrong, fmt.Sprintf("gateway_publish_seconds count moved by %v, want 3", got))
		}
		// Write offsets are sampled per member written (every one in
		// rooms this small), so between one per run and one per delivery.
		if got := delta(m, "gateway_fanout_write_offset_seconds"); got < 1 || got > delta(m, "gateway_messages_out_total") {
			wrong = append(wrong, fmt.Sprintf("gateway_fanout_write_offset_seconds count moved by %v", got))
		}
		if len(wrong) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, w := range wrong {
		t.Error(w)
	}
	if got := value(t, m, "gateway_members"); got != 4 { // two inboxes, two in general
		t.Errorf("gateway_members = %v, want 4", got)
	}
	if got := delta(m, "gateway_bytes_out_total"); got < 6*60 {
		t.Errorf("gateway_bytes_out_total moved by %v for six ~100-byte deliveries", got)
	}

	// Rate limited: alice has spent 4 of her tokens; the rest of the burst
	// goes through, then every further frame is refused with an error.
	refusedWant := 0
	for i := 0; i < burst+3; i++ {
		f := alice.Request(map[string]any{"type": "history", "id": fmt.Sprint("h", i), "room": "general"})
		if f.Str("type") == "error" {
			expectError(t, f, "rate_limited")
			refusedWant++
		}
	}
	if refusedWant < 3 {
		t.Fatalf("only %d frames were rate limited", refusedWant)
	}
	m = n.scrape(t)
	if got := delta(m, "gateway_rate_limited_total"); got != float64(refusedWant) {
		t.Errorf("gateway_rate_limited_total moved by %v, want %d", got, refusedWant)
	}
	if got := delta(m, "gateway_errors_total", "code=rate_limited"); got != float64(refusedWant) {
		t.Errorf("gateway_errors_total{code=rate_limited} moved by %v, want %d", got, refusedWant)
	}

	// Closed slow: a member that stops reading while the server API
	// publishes into its room.
	slow := dialSlow(t, n, "big")
	defer slow.Close()
	text := strings.Repeat("x", 8000)
	deadline := time.Now().Add(10 * time.Second)
	for value(t, n.scrape(t), "gateway_slow_consumer_closes_total") == value(t, before, "gateway_slow_consumer_closes_total") {
		if time.Now().After(deadline) {
			t.Fatal("the slow member was never closed")
		}
		for i := 0; i < 20; i++ {
			apiCall(t, n, "POST", "/api/publish", "k", map[string]any{"room": "big", "text": text})
		}
	}
	// The close is counted by code once the socket is gone.
	for delta(n.scrape(t), "gateway_connections_closed_total", "code=4001") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("gateway_connections_closed_total{code=4001} never moved")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := delta(n.scrape(t), "gateway_api_requests_total", "route=publish", "status=200"); got < 20 {
		t.Errorf("gateway_api_requests_total{route=publish,status=200} moved by %v", got)
	}
}

// TestRefusedHandshakesCounted: each refusal reason has its series.
func TestRefusedHandshakesCounted(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.Origins = []string{"https://chat.example.com"} })
	before := value(t, n.scrape(t), "gateway_handshakes_refused_total", "reason=origin")
	h := http.Header{"Origin": {"https://evil.example.com"}}
	if code, _ := wstest.Upgrade(t, n.wsURL("user=a"), wstest.Header(h)); code != 403 {
		t.Fatalf("foreign origin: HTTP %d, want 403", code)
	}
	h.Set("Origin", "https://chat.example.com")
	if code, _ := wstest.Upgrade(t, n.wsURL("user=bad%20name"), wstest.Header(h)); code != 400 {
		t.Fatalf("bad user: HTTP %d, want 400", code)
	}
	m := n.scrape(t)
	if got := value(t, m, "gateway_handshakes_refused_total", "reason=origin") - before; got != 1 {
		t.Errorf("refused{origin} moved by %v, want 1", got)
	}
	if got := value(t, m, "gateway_handshakes_refused_total", "reason=bad_request"); got != 1 {
		t.Errorf("refused{bad_request} = %v, want 1", got)
	}
}

// A cluster node exports no history gauges: its history is in Redis, and a
// canned 0 would read as an empty store.
func TestClusterNodeHasNoHistoryGauges(t *testing.T) {
	r := redistest.Start(t)
	n := startCluster(t, 1, r.URL())[0]
	m := n.scrape(t)
	for _, name := range []string{"gateway_history_messages", "gateway_history_bytes", "gateway_history_rooms"} {
		if _, ok := m[name]; ok {
			t.Errorf("a cluster node exports %s", name)
		}
	}
	if _, ok := m["gateway_connections"]; !ok {
		t.Fatal("the scrape has no gateway_connections: it read nothing")
	}
}
