package attack

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
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
