package gateway_test

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/chatgw/gateway/gateway/hub"
	"github.com/chatgw/gateway/internal/gatewaytest"
)

// TestNothingBeforeThe101: the heartbeat sweep pings every registered
// client; a client registered before its 101 was written could be pinged
// first, and the ping's bytes then came before the handshake answer (seen
// once in 10,000 upgrades under load). Here the sweep runs without pause
// over every shard while clients upgrade: each answer must begin with the
// status line.
func TestNothingBeforeThe101(t *testing.T) {
	srv, _ := gatewaytest.Start(t, nil)
	stop := make(chan struct{})
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for shard := range hub.ClientShards {
				srv.Hub().Tick(shard, time.Now().UnixNano(), int64(time.Hour))
			}
		}
	}()
	// The clients stay open until the sweep has stopped: a ping to a
	// socket its peer closed fails, and nbio closes a socket whose write
	// failed from the writing goroutine, which is the descriptor race this
	// test is not about (docs/nbio.md, "Not covered"). Each client gets a
	// few KB of pings meanwhile.
	var open []net.Conn
	defer func() {
		close(stop)
		<-swept
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range 300 {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		_, _ = fmt.Fprintf(c, "GET /ws?user=b%d HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", i)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		head := make([]byte, 12)
		_, err = io.ReadFull(c, head)
		if err != nil || string(head) != "HTTP/1.1 101" {
			t.Fatalf("upgrade %d: the answer began %q (%v), want the 101 status line first", i, head, err)
		}
	}
}
