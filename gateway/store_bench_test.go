package gateway_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/internal/gatewaytest"
	"github.com/chatgw/gateway/internal/redistest"
)

// BenchmarkPublishAck: what each history store costs a sender, on the
// same load: ackSenders connections, each in a room of its own with one
// other member reading, keep ackWindow sends in flight (a new one per
// ack); b.N sends in all. msgs/s is the throughput; p50-ms and p99-ms the
// time from a send to its ack. Stores: memory (--data-dir ""), the
// durable store under each --history-sync, and Redis (cluster mode, a
// redis-server of its own, no persistence: its own fsync policy is
// Redis's to set).
//
//	go test -run XXX -bench BenchmarkPublishAck -benchtime 20000x ./gateway/
func BenchmarkPublishAck(b *testing.B) {
	for _, store := range []string{"memory", "disk-always", "disk-interval", "disk-none", "redis"} {
		b.Run(store, func(b *testing.B) {
			n := storeNode(b, store)
			benchAcks(b, n)
		})
	}
}

const (
	ackSenders = 16
	ackWindow  = 8
)

func storeNode(b *testing.B, store string) *node {
	b.Helper()
	srv, cfg := gatewaytest.Start(b, func(c *gateway.Config) {
		c.Rate, c.Burst = 1e6, 1e6
		switch store {
		case "redis":
			c.RedisURL = redistest.Start(b).URL()
			c.NodeID = "bench"
		case "disk-always", "disk-interval", "disk-none":
			c.DataDir = b.TempDir()
			c.HistorySync = store[len("disk-"):]
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + srv.AdminAddr() + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("node never ready")
		}
	}
	return &node{srv: srv, cfg: cfg}
}

// benchAcks runs the load and reports its figures.
func benchAcks(b *testing.B, n *node) {
	type sender struct {
		ws   *websocket.Conn
		room string
	}
	var senders []sender
	for i := 0; i < ackSenders; i++ {
		room := fmt.Sprint("ack-", i)
		for _, user := range []string{"s" + strconv.Itoa(i), "r" + strconv.Itoa(i)} {
			ws, _, err := websocket.DefaultDialer.Dial(n.wsURL("user="+user), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = ws.Close() })
			if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","id":"j","room":"`+room+`"}`)); err != nil {
				b.Fatal(err)
			}
			for { // welcome, the inbox's joined, the room's joined
				_, m, err := ws.ReadMessage()
				if err != nil {
					b.Fatal(err)
				}
				if strings.Contains(string(m), `"id":"j"`) {
					break
				}
			}
			if user[0] == 's' {
				senders = append(senders, sender{ws: ws, room: room})
			} else {
				go func() { // the other member reads everything
					for {
						if _, _, err := ws.ReadMessage(); err != nil {
							return
						}
					}
				}()
			}
		}
	}
	per := max(b.N/ackSenders, 1)
	lat := make([][]time.Duration, ackSenders)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sentAt := make(map[string]time.Time, ackWindow)
			next, acked := 0, 0
			send := func() {
				id := strconv.Itoa(next)
				next++
				sentAt[id] = time.Now()
				_ = s.ws.WriteMessage(websocket.TextMessage,
					[]byte(`{"type":"send","id":"`+id+`","room":"`+s.room+`","text":"a message of about a hundred bytes, as chat messages often are: hello there"}`))
			}
			for k := 0; k < ackWindow && next < per; k++ {
				send()
			}
			for acked < per {
				_, m, err := s.ws.ReadMessage()
				if err != nil {
					return
				}
				js := string(m)
				if !strings.Contains(js, `"type":"ack"`) {
					continue
				}
				id := jsonField(js, "id")
				if t, ok := sentAt[id]; ok {
					lat[i] = append(lat[i], time.Since(t))
					delete(sentAt, id)
				}
				acked++
				if next < per {
					send()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		b.Fatal("no acks")
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / 1e6 }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// jsonField returns the string value of "key" in the flat JSON text js.
func jsonField(js, key string) string {
	_, rest, ok := strings.Cut(js, `"`+key+`":"`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}
