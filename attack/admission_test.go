package attack

import (
	"net"
	"sync"
	"testing"
	"time"
)

// maxHandshakesPerIP is the default of --max-handshakes-per-ip.
const maxHandshakesPerIP = 256

// TestPerIPCapAtAccept: the per-address caps count a socket from accept,
// not from its upgrade request. Counted only at the request, a client can
// hold any number of silent sockets (each one a descriptor and a parser on
// the node) until the handshake timeout, and start again.
func TestPerIPCapAtAccept(t *testing.T) {
	t.Parallel()

	t.Run("max-conns-per-ip 2", func(t *testing.T) {
		p := startGateway(t, "--max-conns-per-ip", "2")
		s1, s2 := dialTCP(t, p.Addr), dialTCP(t, p.Addr)
		time.Sleep(200 * time.Millisecond) // let the node accept both
		expect429(t, dialTCP(t, p.Addr), "3rd silent socket")
		for i, s := range []net.Conn{s1, s2} {
			if state := silentState(s, 100*time.Millisecond); state != "open" {
				t.Fatalf("silent socket %d within the cap: %s, want open", i+1, state)
			}
		}
		s1.Close()
		s2.Close()

		// Upgraded connections count the same: two clients, then a third
		// socket is refused before it says anything. The node may take a
		// moment to see the silent sockets go.
		var ws []*wsConn
		for deadline := time.Now().Add(2 * time.Second); len(ws) < 2; time.Sleep(50 * time.Millisecond) {
			c, err := tryDialWS(p.Addr, "u"+string(rune('a'+len(ws))), "")
			if err == nil {
				ws = append(ws, c)
				defer c.Close()
			} else if time.Now().After(deadline) {
				t.Fatalf("2 clients after the silent sockets closed: %v", err)
			}
		}
		expect429(t, dialTCP(t, p.Addr), "socket beside 2 upgraded connections")
		ws[0].Close()
		ws[1].Close()
		p.assertHealthy(t)
	})

	t.Run("max-handshakes-per-ip default", func(t *testing.T) {
		p := startGateway(t)
		n := pick(300, 2000)
		socks := make([]net.Conn, 0, n)
		for range n {
			c, err := net.DialTimeout("tcp", p.Addr, 3*time.Second)
			if err != nil {
				t.Fatalf("socket %d: %v", len(socks)+1, err)
			}
			socks = append(socks, c)
		}
		defer func() {
			for _, c := range socks {
				c.Close()
			}
		}()
		time.Sleep(300 * time.Millisecond) // let the node accept them all

		states := make([]string, n)
		var wg sync.WaitGroup
		for i, c := range socks {
			wg.Add(1)
			go func() { defer wg.Done(); states[i] = silentState(c, time.Second) }()
		}
		wg.Wait()
		count := map[string]int{}
		for _, s := range states {
			count[s]++
		}
		t.Logf("%d silent sockets: %v", n, count)
		open, refused := count["open"], count["429+closed"]
		if open > maxHandshakesPerIP {
			t.Errorf("%d silent sockets from one address stay open; want at most %d", open, maxHandshakesPerIP)
		}
		if open < maxHandshakesPerIP-16 {
			t.Errorf("only %d silent sockets stay open; the cap is %d, not lower", open, maxHandshakesPerIP)
		}
		if open+refused != n {
			t.Errorf("every socket over the cap must get 429 and be closed: %v", count)
		}
		for _, c := range socks {
			c.Close()
		}
		p.assertHealthy(t)
	})
}

// expect429 fails t unless c, having sent nothing, is answered 429 and
// closed within a second.
func expect429(t *testing.T, c net.Conn, what string) {
	t.Helper()
	if s := silentState(c, time.Second); s != "429+closed" {
		t.Fatalf("%s: %s; want HTTP/1.1 429 and closed within 1s of connecting", what, s)
	}
}

// silentState says what the node did to a socket that sent nothing, within
// d: "open" (nothing), "429+closed", or what else happened.
func silentState(c net.Conn, d time.Duration) string {
	got, closed := readToClose(c, d)
	switch code := statusOf(got); {
	case len(got) == 0 && !closed:
		return "open"
	case len(got) == 0:
		return "closed without an answer"
	case code == 429 && closed:
		return "429+closed"
	case code == 429:
		return "429 but left open"
	default:
		return "answered " + firstLine(got)
	}
}
