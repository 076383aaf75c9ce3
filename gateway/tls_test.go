package gateway_test

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/internal/wstest"
)

// An upgraded wss:// connection is not dropped by the handshake sweep: the
// pending set is keyed by the raw socket under the TLS wrapper.
func TestWSSOutlivesHandshakeTimeout(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	n := startNode(t, func(c *gateway.Config) {
		c.TLSCert, c.TLSKey = certFile, keyFile
		c.HandshakeTimeout = 500 * time.Millisecond
	})
	c := wstest.Dial(t, "wss://"+n.srv.Addr()+"/ws?user=alice",
		wstest.Dialer(&websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}}))
	c.Next() // welcome
	c.Next() // inbox joined
	time.Sleep(1500 * time.Millisecond)
	c.Timeout = 3 * time.Second
	if f := c.Request(map[string]any{"type": "ping", "id": "p"}); f.Str("type") != "pong" {
		t.Fatalf("after the handshake timeout: %v", f)
	}
}

// Over wss:// the frame guard runs as over ws://: an unmasked frame gets a
// 1002 close frame, a frame claiming 2^63-1 bytes a 1009 one, and a request
// head over --max-header-bytes a 431 (nbio's TLS path would skip all three).
func TestWSSGuarded(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	n := startNode(t, func(c *gateway.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	dial := func() (*tls.Conn, *bufio.Reader) {
		c, err := tls.Dial("tcp", n.srv.Addr(), &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		return c, bufio.NewReader(c)
	}
	upgrade := func() (*tls.Conn, *bufio.Reader) {
		c, r := dial()
		_, _ = io.WriteString(c, "GET /ws?user=tlsguard HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		resp, err := http.ReadResponse(r, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		return c, r
	}
	for _, c := range []struct {
		name  string
		frame []byte
		want  int
	}{
		{"unmasked", []byte{0x81, 0x02, 'h', 'i'}, 1002},
		{"huge length", []byte{0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4}, 1009},
	} {
		conn, r := upgrade()
		if _, err := conn.Write(c.frame); err != nil {
			t.Fatal(err)
		}
		if got := readCloseCode(t, r); got != c.want {
			t.Errorf("%s frame over TLS: close %d, want %d", c.name, got, c.want)
		}
	}
	conn, r := dial()
	_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nX-Big: "+strings.Repeat("a", 16<<10))
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("16 KB request head over TLS: %v %v, want 431", resp, err)
	}
}

// readCloseCode skips server frames until a close frame and returns its code.
func readCloseCode(t *testing.T, r *bufio.Reader) int {
	t.Helper()
	for {
		var h [2]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		n := int(h[1] & 0x7F)
		switch n {
		case 126:
			var b [2]byte
			_, _ = io.ReadFull(r, b[:])
			n = int(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			_, _ = io.ReadFull(r, b[:])
			n = int(binary.BigEndian.Uint64(b[:]))
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			t.Fatalf("short frame: %v", err)
		}
		if h[0]&0x0F == 0x8 && n >= 2 {
			return int(binary.BigEndian.Uint16(payload))
		}
	}
}
