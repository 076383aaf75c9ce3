package attack

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// --- raw TCP and HTTP ---------------------------------------------------

// dialTCP opens a socket to addr, closed at the end of t.
func dialTCP(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedErr reports whether err means the peer ended the connection.
func closedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// readToClose reads until the peer closes the socket or d passes. It keeps
// the first 1 MB of what arrived; closed reports whether the socket ended
// (EOF or reset) within d.
func readToClose(c net.Conn, d time.Duration) (got []byte, closed bool) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64*kB)
	for {
		n, err := c.Read(buf)
		if len(got) < mB {
			got = append(got, buf[:n]...)
		}
		if err != nil {
			return got, closedErr(err)
		}
	}
}

// statusOf is the status code of the HTTP response got starts with, or 0.
func statusOf(got []byte) int {
	f := strings.Fields(firstLine(got))
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	return string(line)
}

// upgradeRequest is a valid RFC 6455 upgrade request for /ws?user=user,
// with extra header lines (each ending in \r\n) before the blank line.
func upgradeRequest(addr, user, extra string) string {
	return "GET /ws?user=" + user + " HTTP/1.1\r\nHost: " + addr + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// --- WebSocket frames ---------------------------------------------------

const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// maskKey is the key of every masked client frame: a constant is fine,
// the server must unmask whatever the key.
var maskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// frameHeader is a client frame header claiming a payload of n bytes, in
// the shortest length form, followed by the mask key when masked. It may
// lie: the payload that follows is the caller's business.
func frameHeader(fin bool, op byte, masked bool, n uint64) []byte {
	h := []byte{op & 0x0f, 0}
	if fin {
		h[0] |= 0x80
	}
	if masked {
		h[1] = 0x80
	}
	switch {
	case n < 126:
		h[1] |= byte(n)
	case n <= 0xffff:
		h[1] |= 126
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h[1] |= 127
		h = binary.BigEndian.AppendUint64(h, n)
	}
	if masked {
		h = append(h, maskKey[:]...)
	}
	return h
}

// maskAt masks p in place as payload bytes starting at offset off.
func maskAt(p []byte, off int) []byte {
	for i := range p {
		p[i] ^= maskKey[(off+i)%4]
	}
	return p
}

// clientFrame is a whole frame carrying payload, masked when masked.
func clientFrame(fin bool, op byte, masked bool, payload []byte) []byte {
	p := append([]byte(nil), payload...)
	if masked {
		maskAt(p, 0)
	}
	return append(frameHeader(fin, op, masked, uint64(len(p))), p...)
}

// closePayload is a close frame body: the code, then the reason.
func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// wsFrame is one frame from the server.
type wsFrame struct {
	op      byte
	payload []byte
}

// closeCode is the code of a close frame, 1005 when it carries none.
func (f wsFrame) closeCode() int {
	if len(f.payload) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(f.payload))
}

// readFrame reads one server frame of at most limit payload bytes. A
// server must not mask; a masked frame is unmasked all the same.
func readFrame(r *bufio.Reader, limit uint64) (wsFrame, error) {
	var h [14]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return wsFrame{}, err
	}
	f, n, ext := wsFrame{op: h[0] & 0x0f}, uint64(h[1]&0x7f), 0
	switch n {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	if h[1]&0x80 != 0 {
		ext += 4
	}
	if _, err := io.ReadFull(r, h[2:2+ext]); err != nil {
		return f, err
	}
	switch n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		n = binary.BigEndian.Uint64(h[2:])
	}
	if n > limit {
		return f, fmt.Errorf("server frame of %d bytes (op %d)", n, f.op)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, err
	}
	if h[1]&0x80 != 0 {
		key := h[2+ext-4 : 2+ext]
		for i := range f.payload {
			f.payload[i] ^= key[i%4]
		}
	}
	return f, nil
}

// wsConn is an upgraded raw socket.
type wsConn struct {
	net.Conn
	br *bufio.Reader
}

// dialWS upgrades a raw socket as user, with extra header lines, and fails
// t unless the answer is 101. Frames that came with the answer stay in br.
func dialWS(t testing.TB, addr, user, extra string) *wsConn {
	t.Helper()
	c, err := tryDialWS(addr, user, extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tryDialWS upgrades a raw socket as user, with extra header lines; err
// unless the answer is 101. No second try: an upgrade that ends before its
// answer is what nbio's descriptor race looked like (docs/nbio.md), and
// these tests are where it would show again.
func tryDialWS(addr, user, extra string) (*wsConn, error) {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReaderSize(c, 64*kB)
	_, err = io.WriteString(c, upgradeRequest(addr, user, extra))
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(br, nil)
	}
	if err == nil && resp.StatusCode != http.StatusSwitchingProtocols {
		err = fmt.Errorf("HTTP %s", resp.Status)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("upgrade as %q: %v", user, err)
	}
	_ = c.SetDeadline(time.Time{})
	return &wsConn{Conn: c, br: br}, nil
}

// write writes raw bytes; a socket the server already closed is not an
// error here (the test then reads why).
func (c *wsConn) write(t testing.TB, b []byte) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Conn.Write(b); err != nil && !closedErr(err) {
		t.Fatalf("write: %v", err)
	}
}

// next reads one frame within d.
func (c *wsConn) next(d time.Duration) (wsFrame, error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	return readFrame(c.br, 4*mB)
}

// awaitClose reads frames until a close frame, within d, and returns it
// and the frames before it; err when the socket ends or d passes first.
func (c *wsConn) awaitClose(d time.Duration) (closeFrame wsFrame, before []wsFrame, err error) {
	for deadline := time.Now().Add(d); ; {
		f, err := c.next(time.Until(deadline))
		if err != nil {
			return f, before, fmt.Errorf("no close frame (after %d other frames): %w", len(before), err)
		}
		if f.op == opClose {
			return f, before, nil
		}
		if len(before) < 100000 {
			before = append(before, f)
		}
	}
}

// expectClose fails t unless a close frame with code arrives within d,
// and returns the frames before it.
func (c *wsConn) expectClose(t testing.TB, code int, d time.Duration) []wsFrame {
	t.Helper()
	f, before, err := c.awaitClose(d)
	if err != nil {
		t.Fatalf("want close %d: %v", code, err)
	}
	if got := f.closeCode(); got != code {
		t.Fatalf("close code %d (reason %q), want %d", got, f.payload[min(2, len(f.payload)):], code)
	}
	return before
}

// sendJSON writes v as one masked text frame.
func (c *wsConn) sendJSON(t testing.TB, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	c.write(t, clientFrame(true, opText, true, b))
}

// await reads frames within d until a text frame whose JSON object matches.
func (c *wsConn) await(t testing.TB, d time.Duration, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(d); ; {
		f, err := c.next(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if f.op == opClose {
			t.Fatalf("waiting for %s: closed with %d %q", what, f.closeCode(), f.payload[min(2, len(f.payload)):])
		}
		var m map[string]any
		if f.op == opText && json.Unmarshal(f.payload, &m) != nil {
			t.Fatalf("waiting for %s: text frame is not a JSON object: %q", what, f.payload)
		}
		if m != nil && match(m) {
			return m
		}
	}
}

// isType matches frames of type typ (and id, when id is not "").
func isType(typ, id string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["type"] == typ && (id == "" || m["id"] == id) }
}
