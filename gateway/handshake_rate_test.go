package gateway_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/gateway"
)

// TestHandshakeRateSheds: over --handshake-rate, upgrades get 503 with
// Retry-After at once (no token check, no upgrade), are counted, and are
// admitted again a second later; connected clients are untouched.
func TestHandshakeRateSheds(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.HandshakeRate = 3 })
	var ok []*websocket.Conn
	refused := 0
	for i := 0; i < 6; i++ {
		ws, resp, err := websocket.DefaultDialer.Dial(n.wsURL("user=u"+string(rune('a'+i))), nil)
		if err == nil {
			ok = append(ok, ws)
			defer ws.Close()
			continue
		}
		if resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("dial %d: %v %v", i, err, resp)
		}
		refused++
	}
	if len(ok) != 3 || refused != 3 {
		t.Fatalf("%d admitted, %d refused; want 3 and 3 (burst of one second's worth)", len(ok), refused)
	}
	if got := value(t, n.scrape(t), "gateway_handshakes_refused_total", "reason=handshake_rate"); got != 3 {
		t.Fatalf("refused{handshake_rate} = %v", got)
	}
	time.Sleep(1100 * time.Millisecond)
	c := n.dial(t, "later")
	c.Join("r")
}
