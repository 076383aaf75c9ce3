package metrics

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A node may run without metrics (nil *Metrics): every method must then
// do nothing; one that dereferences its receiver panics and fails this.
func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.Opened()
	m.Closed(4001)
	m.In("send")
	m.Reply("ack")
	m.Error("internal")
	m.RateLimited()
	m.Refused("origin")
	m.API("stats", 200)
}

func TestLabelsAreResolved(t *testing.T) {
	m := New()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ { // concurrent: the close-code cache is shared
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Closed(0)
			m.Closed(4001)
			m.In("no-such-type")
			m.In("send")
			m.Observer().FanoutPass(3)
			m.Observer().FanoutLatency(2 * time.Millisecond)
		}()
	}
	wg.Wait()
	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.closed.WithLabelValues("1006")), 4, "closed{1006} (no close frame)"},
		{testutil.ToFloat64(m.closed.WithLabelValues("4001")), 4, "closed{4001}"},
		{testutil.ToFloat64(m.in["unknown"]), 4, "in{unknown}"},
		{testutil.ToFloat64(m.in["send"]), 4, "in{send}"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.batch); n != 1 {
		t.Errorf("batch histogram series = %d", n)
	}
	exp := `
# HELP gateway_fanout_batch_messages Messages (deliveries queued for a room) a fan-out worker took in one pass.
# TYPE gateway_fanout_batch_messages histogram
`
	if err := testutil.CollectAndCompare(m.batch, strings.NewReader(exp+histLines())); err != nil {
		t.Error(err)
	}
}

// histLines is the batch histogram after four passes of 3 messages.
func histLines() string {
	var b strings.Builder
	for _, le := range []string{"1", "2", "4", "8", "16", "32", "64", "128", "256", "512", "1024", "2048"} {
		n := "4"
		if le == "1" || le == "2" {
			n = "0"
		}
		b.WriteString(`gateway_fanout_batch_messages_bucket{le="` + le + `"} ` + n + "\n")
	}
	b.WriteString(`gateway_fanout_batch_messages_bucket{le="+Inf"} 4` + "\n")
	b.WriteString("gateway_fanout_batch_messages_sum 12\ngateway_fanout_batch_messages_count 4\n")
	return b.String()
}
