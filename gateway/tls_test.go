package gateway_test

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/gateway"
)

// An upgraded wss:// connection is not dropped by the handshake sweep: the
// pending set is keyed by the raw socket under the TLS wrapper.
func TestWSSOutlivesHandshakeTimeout(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	n := startNode(t, func(c *gateway.Config) {
		c.TLSCert, c.TLSKey = certFile, keyFile
		c.HandshakeTimeout = 500 * time.Millisecond
	})
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}}
	ws, _, err := d.Dial("wss://"+n.srv.Addr()+"/ws?user=alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var f map[string]any
	_ = ws.ReadJSON(&f)
	_ = ws.ReadJSON(&f)
	time.Sleep(1500 * time.Millisecond)
	_ = ws.WriteJSON(map[string]any{"type": "ping", "id": "p"})
	_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	if err := ws.ReadJSON(&f); err != nil || f["type"] != "pong" {
		t.Fatalf("after the handshake timeout: %v %v", f, err)
	}
}
