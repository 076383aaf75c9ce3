package bench

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chatgw/gateway/gateway/metrics"
)

// A Breakdown read from a real node's metrics registry: the observations
// made between the two scrapes, and only those, land in the percentiles.
func TestBreakdownFromMetrics(t *testing.T) {
	m := metrics.New()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	o := m.Observer()
	for i := 0; i < 100; i++ { // before the step: must not count
		o.FanoutQueueWait(500 * time.Millisecond)
	}
	before, err := scrapeHistograms(srv.URL, breakdownSeries)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 100; i++ {
		o.FanoutQueueWait(time.Duration(i) * 100 * time.Microsecond) // 0.1 .. 10 ms
		m.Published(2 * time.Millisecond)
	}
	after, err := scrapeHistograms(srv.URL, breakdownSeries)
	if err != nil {
		t.Fatal(err)
	}
	b := breakdownOf(before, after)
	if b == nil || b.QueueWait == nil || b.Publish == nil {
		t.Fatalf("breakdown %+v", b)
	}
	if b.WriteOffset != nil {
		t.Errorf("write offset %+v from no observations", b.WriteOffset)
	}
	// Buckets are 1.5x apart: a percentile is within that of the truth.
	within := func(name string, got, want float64) {
		if got < want/1.5 || got > want*1.5 {
			t.Errorf("%s = %.0f µs, want about %.0f", name, got, want)
		}
	}
	if b.QueueWait.Count != 100 {
		t.Errorf("queue wait count %d, want 100 (the step's only)", b.QueueWait.Count)
	}
	within("queue wait p50", b.QueueWait.P50, 5000)
	within("queue wait p99", b.QueueWait.P99, 9900)
	within("publish p50", b.Publish.P50, 2000)
}

func TestBreakdownScrapeErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := scrapeHistograms(srv.URL, breakdownSeries); err == nil {
		t.Error("a 404 scraped without error")
	}
}
