package gateway

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/lesismal/llib/std/crypto/tls"
	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// handshakes tracks accepted sockets that have not upgraded yet, so one
// sweep can drop those older than the handshake timeout: no goroutine or
// timer per pending socket, and a client that dribbles its request byte by
// byte is dropped all the same. It also counts the bytes each one sent
// before its upgrade (the header cap) and, per client address, the sockets
// open and the ones still in their handshake (the per-address caps, taken
// at accept before any byte is parsed).
//
// nbio's own read deadline cannot do this job: nbhttp arms it on the accept
// goroutine after the socket is already registered with the poller, so a
// fast client can finish its upgrade first and be left with a deadline
// that later kills an established WebSocket.
type handshakes struct {
	maxConnsPerIP   int // sockets per address, 0: no cap (--max-conns-per-ip)
	maxPendingPerIP int // sockets per address not yet upgraded, 0: no cap

	mu      sync.Mutex
	m       map[net.Conn]*pendingSock
	conns   map[string]int32 // open sockets per address (only with maxConnsPerIP)
	pending map[string]int32 // sockets per address accepted and not yet upgraded
}

// pendingSock is one socket before its upgrade.
type pendingSock struct {
	at    int64  // accept time, Unix ns
	ip    string // client address without the port
	bytes int    // bytes of the first request's head received so far
	crlf  uint8  // how much of "\r\n\r\n" the bytes so far end with
	done  bool   // a page request on it was answered
}

func newHandshakes(maxConnsPerIP, maxPendingPerIP int) handshakes {
	return handshakes{maxConnsPerIP: maxConnsPerIP, maxPendingPerIP: maxPendingPerIP,
		m: map[net.Conn]*pendingSock{}, conns: map[string]int32{}, pending: map[string]int32{}}
}

// accept takes a place for a new socket from ip, or returns the status
// refusing it (429) when the address is over one of its caps.
func (h *handshakes) accept(ip string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.maxConnsPerIP > 0 && int(h.conns[ip]) >= h.maxConnsPerIP ||
		h.maxPendingPerIP > 0 && int(h.pending[ip]) >= h.maxPendingPerIP {
		return http.StatusTooManyRequests
	}
	if h.maxConnsPerIP > 0 {
		h.conns[ip]++
	}
	h.pending[ip]++
	return 0
}

// add starts the handshake clock of a socket accept admitted.
func (h *handshakes) add(c net.Conn, now int64) {
	c = rawConn(c)
	ip := hostOf(c.RemoteAddr().String())
	h.mu.Lock()
	h.m[c] = &pendingSock{at: now, ip: ip}
	h.mu.Unlock()
}

// upgraded takes a socket out of the handshake set: it gives back its
// pending place, and keeps its connection place until closed.
func (h *handshakes) upgraded(c net.Conn) {
	c = rawConn(c)
	h.mu.Lock()
	if p := h.m[c]; p != nil {
		delete(h.m, c)
		h.unpend(p.ip)
	}
	h.mu.Unlock()
}

// closed gives back every place a socket held.
func (h *handshakes) closed(c net.Conn) {
	c = rawConn(c)
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.m[c]
	ip := ""
	if p != nil {
		delete(h.m, c)
		h.unpend(p.ip)
		ip = p.ip
	}
	if h.maxConnsPerIP > 0 {
		if ip == "" {
			ip = hostOf(c.RemoteAddr().String())
		}
		if h.conns[ip]--; h.conns[ip] <= 0 {
			delete(h.conns, ip)
		}
	}
}

func (h *handshakes) unpend(ip string) {
	if h.pending[ip]--; h.pending[ip] <= 0 {
		delete(h.pending, ip)
	}
}

// read counts the bytes of a socket's first request head (request line
// and headers, up to the blank line) as they arrive, and reports whether
// they are still within limit, and how many bytes of data to hand to nbio:
// all of it up to and including the read that completes the head (a body
// sent with the head reaches the parser, to be refused), nothing after. A
// socket carries one request: a page answer says Connection: close (and
// answered lets only one through), and a client must not send frames
// before the 101 (RFC 6455 4.1), so pipelined requests cannot queue
// answers on the node.
func (h *handshakes) read(c net.Conn, data []byte, limit int) (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.m[c]
	if p == nil {
		return len(data), true // upgraded or closed: not ours to count
	}
	if p.crlf == 4 {
		return 0, true // after the head: dropped
	}
	for i, b := range data {
		switch {
		case b == '\r' && p.crlf%2 == 0, b == '\n' && p.crlf%2 == 1:
			p.crlf++
		case b == '\r':
			p.crlf = 1
		default:
			p.crlf = 0
		}
		if p.crlf == 4 {
			p.bytes += i + 1
			return len(data), p.bytes <= limit
		}
	}
	p.bytes += len(data)
	return len(data), p.bytes <= limit
}

// shutdown ends a socket from any goroutine: shutdown(2) rather than
// close(2), so its descriptor stays allocated until nbio's poller sees the
// hang-up and closes it on its own goroutine. nbio indexes connections by
// descriptor; a close from another goroutine lets the poller apply an
// event of the old socket to a new one that was given the same number.
// Only sockets still in the set are touched: nbio reports a close (closed,
// under the same lock) before it releases the descriptor.
func (h *handshakes) shutdown(c net.Conn) {
	c = rawConn(c)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m[c] != nil {
		shutdownSocket(c)
	}
}

// shutdownSocket shuts a socket down for reading and writing.
func shutdownSocket(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		_ = c.Close()
		return
	}
	if rc, err := sc.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
	}
}

// hijack takes the socket of an upgrade request from nbhttp: the raw
// *nbio.Conn, and the connection to write to (that socket, or the TLS
// connection over it). nc is nil when w is not nbio's.
func hijack(w http.ResponseWriter) (nc *nbio.Conn, sock net.Conn) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil
	}
	c, _, err := hj.Hijack()
	if err != nil {
		return nil, nil
	}
	if hc, ok := c.(*nbhttp.Conn); ok {
		c = hc.Conn
	}
	nc, _ = rawConn(c).(*nbio.Conn)
	return nc, c
}

// shutdownOpen shuts c down unless nbio has closed it: under c's lock,
// where nbio marks it closed before it releases the descriptor, so the
// descriptor is still c's.
func shutdownOpen(c *nbio.Conn) {
	c.Lock()
	defer c.Unlock()
	if closed, _ := c.IsClosed(); !closed {
		shutdownSocket(c)
	}
}

// answer reports whether a page request on c may be answered: only the
// first one is, so a socket's pipelined requests get one answer.
func (h *handshakes) answer(c net.Conn) bool {
	c = rawConn(c)
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.m[c]
	if p == nil || p.done {
		return false
	}
	p.done = true
	return true
}

// expire shuts down the sockets accepted before cutoff, and returns how
// many. Their places are given back when nbio reports them closed.
func (h *handshakes) expire(cutoff int64) int {
	n := 0
	h.mu.Lock()
	defer h.mu.Unlock()
	for c, p := range h.m {
		if p.at < cutoff {
			shutdownSocket(c)
			p.at = int64(^uint64(0) >> 1) // once, not once per sweep
			n++
		}
	}
	return n
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

// gateListener applies the per-address caps at accept: a socket over them
// is answered 429 and closed before nbio sees it, so it costs no parser,
// no poller registration and no handshake slot.
type gateListener struct {
	net.Listener
	h       *handshakes
	refused func() // counts a refusal (metrics, log)
}

func (l gateListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.h.accept(hostOf(c.RemoteAddr().String())) == 0 {
			return c, nil
		}
		l.refused()
		// A fresh socket's send buffer is empty: this write does not block.
		_, _ = c.Write([]byte(refusedAtAccept))
		_ = c.Close()
	}
}

var refusedAtAccept = rawHTTP(http.StatusTooManyRequests, "too many connections from your address", "Retry-After: 1\r\n")

// rawHTTP is a complete HTTP/1.1 answer that closes the connection, for
// sockets refused below net/http (at accept, or mid-request).
func rawHTTP(status int, reason, extra string) string {
	body := reason + "\n"
	return fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n%s"+
		"Content-Length: %d\r\nConnection: close\r\n\r\n%s", status, http.StatusText(status), extra, len(body), body)
}
