package attack

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPageRequestThenUpgrade alternates a page request, whose client closes
// as soon as it has the answer, with a WebSocket upgrade on a new socket.
// When the node closed page sockets itself from a handler goroutine, nbio's
// poller sometimes applied the old socket's hang-up to the new socket that
// had been given the same descriptor: about 1 upgrade in 200 got EOF and
// no 101 (docs/nbio.md). Every upgrade must succeed.
func TestPageRequestThenUpgrade(t *testing.T) {
	t.Parallel()
	p := startGateway(t)
	rounds := pick(1000, 10000)
	failed := 0
	var open []net.Conn
	defer func() {
		for _, c := range open {
			_ = c.Close()
		}
	}()
	for i := 0; i < rounds; i++ {
		c, err := net.DialTimeout("tcp", p.Addr, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET /client.js HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK || !resp.Close {
			t.Fatalf("page request %d: %v %v, want 200 with Connection: close", i, resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = c.Close() // before the node does, as net/http clients do

		ws, err := net.DialTimeout("tcp", p.Addr, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, ws)
		_, _ = io.WriteString(ws, upgradeRequest(p.Addr, "u"+strconv.Itoa(i), ""))
		_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
		line, err := bufio.NewReader(ws).ReadString('\n')
		if err != nil || !strings.Contains(line, " 101 ") {
			failed++
			t.Logf("upgrade %d after a page request: %q %v", i, line, err)
		}
		if len(open) > 50 { // stay far from the per-address caps
			_ = open[0].Close()
			open = open[1:]
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d upgrades after a page request failed", failed, rounds)
	}
	p.assertHealthy(t)
}

// TestCloseFrameThenUpgrade alternates a client close frame, answered by
// the node, with a WebSocket upgrade on a new socket. nbio closes a
// WebSocket from a handler goroutine after it answers a close frame; the
// client's own FIN, queued as a poller event of the old descriptor, then
// hit the next socket accepted with that number, which ended before its
// 101 (docs/nbio.md). Every upgrade must succeed at the first try.
func TestCloseFrameThenUpgrade(t *testing.T) {
	t.Parallel()
	p := startGateway(t)
	rounds := pick(1000, 10000)
	failed := 0
	// byeAfterUpgrade upgrades as user, sends a close frame, reads the
	// answer and closes at once, as browsers do once they have it.
	byeAfterUpgrade := func(i int, user string) {
		c, err := tryDialWS(p.Addr, user, "")
		if err != nil {
			failed++
			t.Logf("upgrade %d after a close frame: %v", i, err)
			return
		}
		c.write(t, clientFrame(true, opClose, true, closePayload(1000, "")))
		_, _, _ = c.awaitClose(3 * time.Second)
		_ = c.Close()
	}
	for i := 0; i < rounds; i++ {
		byeAfterUpgrade(i, "a"+strconv.Itoa(i))
		byeAfterUpgrade(i, "b"+strconv.Itoa(i))
	}
	if failed > 0 {
		t.Fatalf("%d of %d upgrades after a close frame failed", failed, rounds)
	}
	p.assertHealthy(t)
}

// TestStalledReaderReset: a member that stops reading is closed with 4001
// once its backlog passes --outbound-max-bytes, and when it does not answer
// the close frame within the grace the node resets its socket. The hub does
// that with SO_LINGER 0 and a shutdown, leaving the close to nbio's poller
// (docs/nbio.md); this checks the poller does close it: the node's
// connection count falls back and the client sees a reset, not a FIN.
func TestStalledReaderReset(t *testing.T) {
	t.Parallel()
	p := startGateway(t, "--outbound-max-bytes", "65536", "--rate", "100000", "--burst", "100000")
	stalled := dialWS(t, p.Addr, "stalled", "")
	stalled.sendJSON(t, map[string]any{"type": "join", "id": "j", "room": "r"})
	stalled.await(t, 3*time.Second, "joined", isType("joined", ""))
	sender := dialWS(t, p.Addr, "sender", "")
	go drain(sender)
	sender.sendJSON(t, map[string]any{"type": "join", "id": "j", "room": "r"})

	text := strings.Repeat("s", 15000)
	deadline := time.Now().Add(30 * time.Second) // the 5 s grace, and room to spare
	for i := 0; ; i++ {
		n, _, err := p.metric("gateway_connections")
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalled member still held a connection after 30 s (%v open)", n)
		}
		if i < 4000 { // 60 MB: well past the member's kernel buffers and the cap
			for j := 0; j < 10; j++ {
				sender.sendJSON(t, map[string]any{"type": "send", "id": strconv.Itoa(i*10 + j), "room": "r", "text": text})
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, stalled.br)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the stalled member's socket ended with %v, want a reset", err)
	}
	p.assertHealthy(t)
}
