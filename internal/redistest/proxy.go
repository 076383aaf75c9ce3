package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy in front of a redis-server that can make Redis
// slow for the command connections of the clients that go through it,
// and for those only: SetDelay holds back every reply the server sends
// on a connection that is not a pub/sub one. A connection becomes pub/sub
// when its client sends SUBSCRIBE, SSUBSCRIBE or PSUBSCRIBE (go-redis
// gives its PubSub a connection of its own); from then on its bytes are
// never delayed. Each direction keeps its byte order: a reply is held
// back, never reordered.
type Proxy struct {
	target string
	ln     net.Listener
	delay  atomic.Int64 // nanoseconds added to the replies read from now on

	conns, pubsub atomic.Int64 // connections accepted; those that became pub/sub

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewProxy listens on a free loopback port and forwards each connection
// to target (host:port); it is closed at the end of t.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{target: target, ln: ln, open: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the redis:// URL of database 0 through the proxy.
func (p *Proxy) URL() string { return "redis://" + p.Addr() + "/0" }

// SetDelay delays by d the server's bytes read from now on on command
// connections (0: none).
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Conns is how many connections the proxy has accepted.
func (p *Proxy) Conns() int { return int(p.conns.Load()) }

// PubSubConns is how many of them became pub/sub connections.
func (p *Proxy) PubSubConns() int { return int(p.pubsub.Load()) }

// Close stops listening and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	_ = p.ln.Close()
	for c := range p.open {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// track registers c to be closed by Close; false when closed already.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.open[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.open, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

// chunk is bytes of the server's, due to the client at due.
type chunk struct {
	b   []byte
	due time.Time
}

// serve forwards one connection both ways until either side ends.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	var pubsub atomic.Bool
	var wg sync.WaitGroup
	wg.Add(3)
	// Client to server, command by command: a connection is pub/sub before
	// its SUBSCRIBE reaches the server, so the confirmation is not delayed.
	go func() {
		defer wg.Done()
		defer server.Close()
		defer client.Close()
		_ = p.commands(client, server, &pubsub)
	}()
	// Server to client: read at once, each chunk stamped with when it may
	// go on; a writer sends them in order, each not before its time.
	chunks := make(chan chunk, 1024)
	go func() {
		defer wg.Done()
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				due := time.Now()
				if !pubsub.Load() {
					due = due.Add(time.Duration(p.delay.Load()))
				}
				chunks <- chunk{b: append([]byte(nil), buf[:n]...), due: due}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		defer server.Close()
		defer client.Close()
		failed := false
		for c := range chunks { // drained to the end, so the reader never blocks
			if failed {
				continue
			}
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			if _, err := client.Write(c.b); err != nil {
				failed = true
				_ = server.Close()
			}
		}
	}()
	wg.Wait()
}

// commands copies the client's commands to the server, marking the
// connection pub/sub at its first subscribe command.
func (p *Proxy) commands(client, server net.Conn, pubsub *atomic.Bool) error {
	r := bufio.NewReaderSize(client, 32<<10)
	w := bufio.NewWriterSize(server, 32<<10)
	var raw []byte
	for {
		var name string
		var err error
		name, raw, err = readCommand(r, raw[:0])
		if err != nil {
			return err
		}
		switch strings.ToLower(name) {
		case "subscribe", "ssubscribe", "psubscribe":
			if !pubsub.Swap(true) {
				p.pubsub.Add(1)
			}
		}
		if _, err := w.Write(raw); err != nil {
			return err
		}
		if r.Buffered() == 0 { // the end of what the client wrote at once (a pipeline)
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// readCommand reads one command in RESP (an array of bulk strings, or an
// inline command) and appends its bytes to raw; name is its first word.
func readCommand(r *bufio.Reader, raw []byte) (name string, _ []byte, err error) {
	line, err := r.ReadBytes('\n')
	raw = append(raw, line...)
	if err != nil {
		return "", raw, err
	}
	if line[0] != '*' {
		if f := strings.Fields(string(line)); len(f) > 0 {
			name = f[0]
		}
		return name, raw, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(line[1:])))
	if err != nil {
		return "", raw, fmt.Errorf("redistest proxy: bad array header %q", line)
	}
	for i := 0; i < n; i++ {
		hdr, err := r.ReadBytes('\n')
		raw = append(raw, hdr...)
		if err != nil {
			return "", raw, err
		}
		if hdr[0] != '$' {
			return "", raw, errors.New("redistest proxy: a command argument that is not a bulk string")
		}
		size, err := strconv.Atoi(strings.TrimSpace(string(hdr[1:])))
		if err != nil || size < 0 {
			return "", raw, fmt.Errorf("redistest proxy: bad bulk header %q", hdr)
		}
		start := len(raw)
		raw = append(raw, make([]byte, size+2)...)
		if _, err := io.ReadFull(r, raw[start:]); err != nil {
			return "", raw, err
		}
		if i == 0 {
			name = string(raw[start : start+size])
		}
	}
	return name, raw, nil
}
