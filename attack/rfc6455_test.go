package attack

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The RFC 6455 tests send what a conforming client never would and check
// the node fails the connection the way section 7.4 says, over raw
// sockets: a library client cannot even produce these frames.

const maxLength = 1<<63 - 1 // the largest 64-bit payload length RFC 6455 allows

// TestRFC6455UnmaskedFrame: a client frame must be masked (5.1).
func TestRFC6455UnmaskedFrame(t *testing.T) {
	t.Parallel()
	p := startGateway(t)
	c := dialWS(t, p.Addr, "unmasked", "")
	c.write(t, clientFrame(true, opText, false, []byte(`{"type":"ping","id":"1"}`)))
	c.expectClose(t, 1002, 2*time.Second)
	p.assertHealthy(t)
}

// TestRFC6455BadCloseCodes: codes reserved for no-close-frame cases (1005,
// 1006, 1015), unassigned (1004) or out of range (999, 2999) are protocol
// errors (7.4.1). Echoing them would send an invalid close frame back.
func TestRFC6455BadCloseCodes(t *testing.T) {
	t.Parallel()
	p := startGateway(t)
	for _, code := range []uint16{1004, 1005, 1006, 1015, 999, 2999} {
		t.Run(strconv.Itoa(int(code)), func(t *testing.T) {
			c := dialWS(t, p.Addr, "code"+strconv.Itoa(int(code)), "")
			c.write(t, clientFrame(true, opClose, true, closePayload(code, "")))
			c.expectClose(t, 1002, 2*time.Second)
		})
	}
	p.assertHealthy(t)
}

// TestRFC6455CloseReasonUTF8: a close reason must be UTF-8 (5.5.1); if not,
// the endpoint fails with 1007 (7.4.1).
func TestRFC6455CloseReasonUTF8(t *testing.T) {
	t.Parallel()
	p := startGateway(t)
	c := dialWS(t, p.Addr, "reason", "")
	c.write(t, clientFrame(true, opClose, true, closePayload(1000, "bye\xff\xfe")))
	c.expectClose(t, 1007, 2*time.Second)
	p.assertHealthy(t)
}

// TestRFC6455HugeFrameLength: a frame, or a message's continuation, that
// claims 2^63-1 bytes is over --max-message-bytes and closes with 1009,
// before any buffer is sized from the claim. Adding the claim to what a
// fragmented message already holds overflows an int: that must not panic.
func TestRFC6455HugeFrameLength(t *testing.T) {
	t.Parallel()
	p := startGateway(t)
	junk := maskAt(bytes.Repeat([]byte{'j'}, 64), 0)

	t.Run("continuation", func(t *testing.T) {
		mark := p.log.Len()
		c := dialWS(t, p.Addr, "frag", "")
		c.write(t, clientFrame(false, opText, true, []byte("0123456789")))
		c.write(t, append(frameHeader(true, opCont, true, maxLength), junk...))
		c.expectClose(t, 1009, 2*time.Second)
		if s := stackText(p.log.since(mark)); s != "" {
			t.Fatalf("a continuation claiming 2^63-1 bytes: the log shows %q", s)
		}
	})
	// The same continuation, its header dribbled a byte at a time: a
	// guard that reads headers must not rely on one arriving whole.
	t.Run("continuation header split across reads", func(t *testing.T) {
		mark := p.log.Len()
		c := dialWS(t, p.Addr, "split", "")
		c.write(t, clientFrame(false, opText, true, []byte("0123456789")))
		for _, b := range frameHeader(true, opCont, true, maxLength) {
			c.write(t, []byte{b})
			time.Sleep(5 * time.Millisecond) // one read per byte on the node
		}
		c.write(t, junk)
		c.expectClose(t, 1009, 2*time.Second)
		if s := stackText(p.log.since(mark)); s != "" {
			t.Fatalf("a continuation claiming 2^63-1 bytes, header split: the log shows %q", s)
		}
	})
	t.Run("single frame", func(t *testing.T) {
		mark := p.log.Len()
		c := dialWS(t, p.Addr, "single", "")
		c.write(t, append(frameHeader(true, opText, true, maxLength), junk...))
		c.expectClose(t, 1009, 2*time.Second)
		if s := stackText(p.log.since(mark)); s != "" {
			t.Fatalf("a frame claiming 2^63-1 bytes: the log shows %q", s)
		}
	})
	p.assertHealthy(t)
}

// TestRFC6455FrameRules: frames RFC 6455 5.2-5.5 forbid fail the
// connection with 1002 and a close frame (7.1.7), and a well-formed
// fragmented message with a ping between its fragments (5.4) is answered.
// With nbio's reader an orphan continuation dropped the socket without a
// close frame (1006).
func TestRFC6455FrameRules(t *testing.T) {
	t.Parallel()
	p := startGateway(t)
	ping := []byte(`{"type":"ping","id":"f"}`)
	for _, tc := range []struct {
		name   string
		frames [][]byte
	}{
		{"orphan continuation", [][]byte{clientFrame(true, opCont, true, ping)}},
		{"data frame inside a message", [][]byte{clientFrame(false, opText, true, ping[:4]), clientFrame(true, opText, true, ping)}},
		{"reserved bit", [][]byte{func() []byte { f := clientFrame(true, opText, true, ping); f[0] |= 0x40; return f }()}},
		{"unknown opcode", [][]byte{clientFrame(true, 0x3, true, ping)}},
		{"unknown control opcode", [][]byte{clientFrame(true, 0xB, true, nil)}},
		{"fragmented ping", [][]byte{clientFrame(false, opPing, true, []byte("p"))}},
		{"one-byte close", [][]byte{clientFrame(true, opClose, true, []byte{3})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialWS(t, p.Addr, "rules", "")
			c.write(t, bytes.Join(tc.frames, nil))
			c.expectClose(t, 1002, 2*time.Second)
		})
	}
	t.Run("fragments with a ping between", func(t *testing.T) {
		c := dialWS(t, p.Addr, "frags", "")
		var b []byte
		for i, part := range [][]byte{ping[:3], ping[3:10], ping[10:]} {
			op := byte(opCont)
			if i == 0 {
				op = opText
			}
			b = append(b, clientFrame(i == 2, op, true, part)...)
			if i == 0 {
				b = append(b, clientFrame(true, opPing, true, []byte("mid"))...)
			}
		}
		// One byte per write: every header and payload split across reads.
		for i := range b {
			c.write(t, b[i:i+1])
		}
		pong, err := c.next(2 * time.Second)
		for err == nil && pong.op != opPong {
			pong, err = c.next(2 * time.Second)
		}
		if err != nil || string(pong.payload) != "mid" {
			t.Fatalf("pong %q, %v; want the ping's payload", pong.payload, err)
		}
		c.await(t, 2*time.Second, "pong reply", isType("pong", "f"))
	})
	p.assertHealthy(t)
}

// TestRFC6455CloseEchoed: a valid close is answered with the same code,
// then the node closes the TCP connection (5.5.1, 7.1.1).
func TestRFC6455CloseEchoed(t *testing.T) {
	t.Parallel()
	p := startGateway(t)
	c := dialWS(t, p.Addr, "bye", "")
	c.write(t, clientFrame(true, opClose, true, closePayload(1000, "bye")))
	c.expectClose(t, 1000, 2*time.Second)
	if _, closed := readToClose(c, time.Second); !closed {
		t.Errorf("the socket stayed open 1s after the close handshake")
	}
	p.assertHealthy(t)
}

// TestRFC6455Handshake: handshakes RFC 6455 (4.2.1) or HTTP/1.1 (RFC 9112
// 6.3) forbid get their status and the socket is closed at once, not left
// to the 5 s handshake timeout: every half-open socket is one an attacker
// can pile up.
func TestRFC6455Handshake(t *testing.T) {
	t.Parallel()
	p := startGateway(t)
	const (
		upgrade = "Upgrade: websocket\r\n"
		conn    = "Connection: Upgrade\r\n"
		key     = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		v13     = "Sec-WebSocket-Version: 13\r\n"
	)
	host := "Host: " + p.Addr + "\r\n"
	get := "GET /ws?user=h HTTP/1.1\r\n"
	for _, tc := range []struct {
		name string
		req  string
		want int
	}{
		{"HTTP/1.0", "GET /ws?user=h HTTP/1.0\r\n" + host + upgrade + conn + key + v13 + "\r\n", 400},
		{"key not base64", get + host + upgrade + conn + "Sec-WebSocket-Key: not*base64!\r\n" + v13 + "\r\n", 400},
		{"key of 15 bytes", get + host + upgrade + conn + "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n" + v13 + "\r\n", 400},
		{"Content-Length and chunked", get + host + upgrade + conn + key + v13 +
			"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"version 8", get + host + upgrade + conn + key + "Sec-WebSocket-Version: 8\r\n\r\n", 426},
		{"POST", "POST /ws?user=h HTTP/1.1\r\n" + host + upgrade + conn + key + v13 + "Content-Length: 0\r\n\r\n", 405},
		{"no Upgrade header", get + host + conn + key + v13 + "\r\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			got, closed := exchange(t, p.Addr, tc.req, time.Second)
			if code := statusOf(got); code != tc.want {
				t.Fatalf("answered %q; want HTTP/1.1 %d", firstLine(got), tc.want)
			}
			if !closed {
				t.Errorf("socket still open %v after the %d; want it closed", time.Since(start).Round(time.Millisecond), tc.want)
			}
			if tc.want == 426 {
				resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
				if err != nil {
					t.Fatal(err)
				}
				if v := resp.Header.Get("Sec-WebSocket-Version"); strings.TrimSpace(v) != "13" {
					t.Errorf("426 without Sec-WebSocket-Version: 13 (got %q)", v)
				}
			}
		})
	}
	p.assertHealthy(t)
}

// exchange writes raw to a fresh socket and returns what came back before
// the socket closed (or d passed), and whether it closed.
func exchange(t testing.TB, addr, raw string, d time.Duration) ([]byte, bool) {
	t.Helper()
	c := dialTCP(t, addr)
	if _, err := io.WriteString(c, raw); err != nil && !closedErr(err) {
		t.Fatal(err)
	}
	return readToClose(c, d)
}
