package gateway

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// checkUpgrade refuses what RFC 6455 4.2.1 rules out, with the status a
// client can act on, and passes a well-formed request.
func TestCheckUpgrade(t *testing.T) {
	good := func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "http://x/ws", nil)
		r.Header.Set("Upgrade", "websocket")
		r.Header.Set("Connection", "keep-alive, Upgrade")
		r.Header.Set("Sec-WebSocket-Version", "13")
		r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		return r
	}
	if status, reason := checkUpgrade(good()); status != 0 {
		t.Fatalf("a valid upgrade was refused: %d %s", status, reason)
	}
	for _, c := range []struct {
		name   string
		mutate func(r *http.Request)
		status int
	}{
		{"POST", func(r *http.Request) { r.Method = http.MethodPost }, 405},
		{"HTTP/1.0", func(r *http.Request) { r.ProtoMajor, r.ProtoMinor = 1, 0 }, 400},
		{"Content-Length and Transfer-Encoding", func(r *http.Request) {
			r.Header.Set("Content-Length", "5")
			r.Header.Set("Transfer-Encoding", "chunked")
		}, 400},
		{"a body", func(r *http.Request) { r.ContentLength = 3 }, 400},
		{"no Upgrade", func(r *http.Request) { r.Header.Del("Upgrade") }, 400},
		{"no Connection: upgrade", func(r *http.Request) { r.Header.Set("Connection", "keep-alive") }, 400},
		{"version 8", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") }, 426},
		{"no key", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Key") }, 400},
		{"key not base64", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "not base64!") }, 400},
		{"key of 15 bytes", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA") }, 400},
		{"two keys", func(r *http.Request) { r.Header.Add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==") }, 400},
	} {
		r := good()
		c.mutate(r)
		if status, reason := checkUpgrade(r); status != c.status || reason == "" {
			t.Errorf("%s: got %d %q, want %d with a reason", c.name, status, reason, c.status)
		}
	}
}

// validCloseFrame refuses the codes that must never be sent and reasons
// that are not UTF-8.
func TestValidCloseFrame(t *testing.T) {
	for _, c := range []struct {
		code   int
		reason string
		want   int
	}{
		{1000, "bye", 0}, {1001, "", 0}, {1011, "", 0}, {3000, "", 0}, {4999, "", 0},
		{999, "", 1002}, {1004, "", 1002}, {1005, "", 1002}, {1006, "", 1002}, {1012, "", 1002},
		{1015, "", 1002}, {2999, "", 1002}, {5000, "", 1002}, {1000, "\xff", 1007},
	} {
		if got := validCloseFrame(c.code, c.reason); got != c.want {
			t.Errorf("validCloseFrame(%d, %q) = %d, want %d", c.code, c.reason, got, c.want)
		}
	}
}

// The log limiter lets a burst through, then counts instead of writing,
// and writes the count once on flush.
func TestLogLimiter(t *testing.T) {
	var buf bytes.Buffer
	var ll logLimiter
	ll.init(slog.New(slog.NewTextHandler(&buf, nil)), time.Now().UnixNano())
	for i := 0; i < 10*logBurst; i++ {
		ll.line("connection closed", "i", i)
	}
	lines := strings.Count(buf.String(), "connection closed")
	if lines < logBurst || lines > logBurst+logRate {
		t.Fatalf("%d lines written out of %d, want about the burst (%d)", lines, 10*logBurst, logBurst)
	}
	ll.flush()
	if !strings.Contains(buf.String(), "log lines suppressed") {
		t.Fatal("flush wrote no summary of the suppressed lines")
	}
	before := buf.Len()
	ll.flush()
	if buf.Len() != before {
		t.Fatal("a second flush with nothing suppressed wrote a line")
	}
}

// switchingProtocols answers with RFC 6455's own example (section 1.3).
func TestSwitchingProtocols(t *testing.T) {
	got := string(switchingProtocols("dGhlIHNhbXBsZSBub25jZQ=="))
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
