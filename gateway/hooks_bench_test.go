package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/internal/gatewaytest"
)

// BenchmarkHooks: what the application's hooks cost a sender, on the load
// of BenchmarkPublishAck (16 senders, 8 sends in flight each, the memory
// store), against the same load without hooks:
//
//   - none: no hooks;
//
//   - publish-1ms: a publish decision the application answers after 1 ms
//     (a connection's sends are decided one at a time, in order, so each
//     connection's rate is bounded by the decision's round trip);
//
//   - message: message notifications on (the application answers at once);
//     notify-events/s is how fast the node delivered them, from the first
//     event the application received to the last.
//
//     go test -run XXX -bench BenchmarkHooks -benchtime 20000x ./gateway/
func BenchmarkHooks(b *testing.B) {
	for _, mode := range []string{"none", "publish-1ms", "message"} {
		b.Run(mode, func(b *testing.B) {
			var mu sync.Mutex
			var events int
			var first, last time.Time
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				switch r.URL.Path {
				case "/hooks/publish":
					time.Sleep(time.Millisecond)
				case "/hooks/message":
					var batch struct{ Events []json.RawMessage }
					_ = json.Unmarshal(body, &batch)
					mu.Lock()
					if events == 0 {
						first = time.Now()
					}
					events += len(batch.Events)
					last = time.Now()
					mu.Unlock()
				}
			}))
			defer app.Close()
			srv, cfg := gatewaytest.Start(b, func(c *gateway.Config) {
				c.Rate, c.Burst = 1e6, 1e6
				switch mode {
				case "publish-1ms":
					c.HookURL, c.HookEvents = app.URL+"/hooks", "publish"
				case "message":
					c.HookURL, c.HookEvents = app.URL+"/hooks", "message"
				}
			})
			benchAcks(b, &node{srv: srv, cfg: cfg})
			if mode != "message" {
				return
			}
			want := max(b.N/ackSenders, 1) * ackSenders
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				mu.Lock()
				n, span := events, last.Sub(first)
				mu.Unlock()
				if n >= want {
					b.ReportMetric(float64(n)/span.Seconds(), "notify-events/s")
					return
				}
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d messages notified within a minute", n, want)
				}
			}
		})
	}
}
