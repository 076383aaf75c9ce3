package gateway

import (
	"net"
	"sync"
	"time"

	"github.com/lesismal/llib/std/crypto/tls"
	"github.com/lesismal/nbio/nbhttp"
)

// handshakes tracks accepted sockets that have not upgraded yet, so one
// sweep can drop those older than the handshake timeout: no goroutine or
// timer per pending socket, and a client that dribbles its request byte by
// byte is dropped all the same.
//
// nbio's own read deadline cannot do this job: nbhttp arms it on the accept
// goroutine after the socket is already registered with the poller, so a
// fast client can finish its upgrade first and be left with a deadline
// that later kills an established WebSocket.
type handshakes struct {
	mu sync.Mutex
	m  map[net.Conn]int64 // accept time, Unix ns
}

func (h *handshakes) add(c net.Conn, now int64) {
	c = rawConn(c)
	h.mu.Lock()
	if h.m == nil {
		h.m = make(map[net.Conn]int64)
	}
	h.m[c] = now
	h.mu.Unlock()
}

func (h *handshakes) done(c net.Conn) {
	c = rawConn(c)
	h.mu.Lock()
	delete(h.m, c)
	h.mu.Unlock()
}

// expire closes and forgets the sockets accepted before cutoff, and
// returns how many it closed.
func (h *handshakes) expire(cutoff int64) int {
	var old []net.Conn
	h.mu.Lock()
	for c, at := range h.m {
		if at < cutoff {
			old = append(old, c)
			delete(h.m, c)
		}
	}
	h.mu.Unlock()
	for _, c := range old {
		_ = c.Close()
	}
	return len(old)
}

// farFuture is the read deadline nbio is given for sockets before their
// upgrade: effectively none, since handshakes enforces the real timeout.
const farFuture = 100 * 365 * 24 * time.Hour

// rawConn unwraps nbhttp's hijack wrapper and llib's TLS connection down
// to the socket (*nbio.Conn), the one key every callback agrees on.
func rawConn(c net.Conn) net.Conn {
	for {
		switch v := c.(type) {
		case *nbhttp.Conn:
			c = v.Conn
		case *tls.Conn:
			c = v.Conn()
		default:
			return c
		}
	}
}
