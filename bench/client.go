package bench

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lesismal/nbio"
)

// Engine is the harness's client side: many WebSocket connections on one
// nbio event loop, no goroutine per connection. Handshakes are done with
// blocking I/O by the caller's goroutines (bounded in flight by the
// scenario), then the socket is handed to nbio.
type Engine struct {
	g     *nbio.Engine
	addr  string
	srcs  []net.IP
	next  atomic.Uint64
	proto *Proto // nil: the gateway's (see newEngineFor)
	path  string // the handshake's path when proto is set

	// OnText is called on a poller goroutine for every text frame of an
	// established connection; payload is only valid during the call.
	OnText func(c *Conn, payload []byte)
	// OnClose is called when a connection ends.
	OnClose       func(c *Conn, err error)
	closed        atomic.Int64
	firstCloseErr atomic.Pointer[error]
	closeFrames   atomic.Int64
	lastClose     atomic.Pointer[string]
	busyRetries   atomic.Int64 // handshakes refused with 503 and tried again (Target.RetryBusy)
}

// BusyRetries returns how many handshakes were refused with 503 and tried
// again.
func (e *Engine) BusyRetries() int64 { return e.busyRetries.Load() }

// CloseInfo describes the connections that ended: how many, how many by a
// close frame from the gateway (and the last one's payload), and the first
// socket error.
func (e *Engine) CloseInfo() string {
	s := fmt.Sprintf("%d closed, %d by a close frame", e.closed.Load(), e.closeFrames.Load())
	if p := e.lastClose.Load(); p != nil {
		s += fmt.Sprintf(" (last: %q)", *p)
	}
	if p := e.firstCloseErr.Load(); p != nil {
		s += fmt.Sprintf(", first error: %v", *p)
	}
	return s
}

// Conn is one harness connection.
type Conn struct {
	ID   int
	User string
	nc   *nbio.Conn
	pend []byte // a partial frame carried over between reads

	// Scenario state, touched only from the connection's poller goroutine.
	LastSeq uint64
	Room    string
}

// NewEngine starts an nbio client engine for the gateway at addr (host:port),
// dialing from the given source addresses in turn (nil: the kernel picks).
func NewEngine(addr string, srcs []string, pollers int) (*Engine, error) {
	e := &Engine{addr: addr}
	for _, s := range srcs {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("bench: bad source address %q", s)
		}
		e.srcs = append(e.srcs, ip)
	}
	e.g = nbio.NewEngine(nbio.Config{Name: "wsbench", NPoller: pollers})
	e.g.OnData(e.onData)
	e.g.OnClose(func(nc *nbio.Conn, err error) {
		e.closed.Add(1)
		if err != nil {
			e.firstCloseErr.CompareAndSwap(nil, &err)
		}
		if c, ok := nc.Session().(*Conn); ok && e.OnClose != nil {
			e.OnClose(c, err)
		}
	})
	if err := e.g.Start(); err != nil {
		return nil, err
	}
	return e, nil
}

// Stop closes every connection and the engine.
func (e *Engine) Stop() { e.g.Stop() }

// Closed returns how many connections have ended.
func (e *Engine) Closed() int64 { return e.closed.Load() }

// Greeting is what Dial read before handing the socket to the event loop.
type Greeting struct {
	Frames [][]byte      // gateway: welcome, the inbox's joined, and one joined per room; others: see Proto.setup
	Took   time.Duration // TCP connect to the last joined frame (the end of the setup)
}

// Dial connects as user, reads welcome and the inbox's joined frame, joins
// rooms one by one (reading each joined reply), then hands the socket to the
// event loop; with another protocol, its setup joins the rooms (see Proto).
// It blocks; run it on a bounded number of goroutines.
func (e *Engine) Dial(id int, user string, rooms []string, timeout time.Duration) (*Conn, *Greeting, error) {
	nc, br, g, err := e.greet(user, rooms, timeout, nil)
	if err != nil {
		return nil, nil, err
	}
	c := &Conn{ID: id, User: user}
	if len(rooms) > 0 {
		c.Room = rooms[0]
	}
	// Bytes already read past the greeting are parsed here, before the
	// event loop owns the connection, so they come before anything newer
	// and no two goroutines ever parse one connection.
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		e.parse(c, b)
	}
	// The session must be set before the poller sees the socket: a frame
	// read in between would be dropped, and a dropped partial frame
	// misaligns the stream for good.
	nbc, err := nbio.NBConn(nc)
	if err != nil {
		_ = nc.Close()
		return nil, nil, err
	}
	c.nc = nbc
	nbc.SetSession(c)
	if _, err := e.g.AddConn(nbc); err != nil {
		_ = nbc.Close()
		return nil, nil, err
	}
	return c, g, nil
}

// greet connects as user (control, if not nil, runs on the socket before
// it connects), upgrades, reads welcome and the inbox's joined frame, and
// joins rooms one by one, reading each joined reply (another protocol: runs
// its setup). It returns the blocking socket with its deadline cleared and
// the reader holding any bytes read past the last joined frame.
func (e *Engine) greet(user string, rooms []string, timeout time.Duration, control func(network, address string, rc syscall.RawConn) error) (net.Conn, *bufio.Reader, *Greeting, error) {
	start := time.Now()
	d := net.Dialer{Timeout: timeout, Control: control}
	if len(e.srcs) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: e.srcs[e.next.Add(1)%uint64(len(e.srcs))]}
	}
	nc, err := d.Dial("tcp", e.addr)
	if err != nil {
		return nil, nil, nil, err
	}
	_ = nc.SetDeadline(start.Add(timeout))
	fail := func(err error) (net.Conn, *bufio.Reader, *Greeting, error) {
		_ = nc.Close()
		return nil, nil, nil, err
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	proto, path := e.proto, e.path
	if proto == nil {
		proto, path = ProtoGateway, ProtoGateway.Path
	}
	req := "GET " + path + proto.query(user) + " HTTP/1.1\r\nHost: " + e.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(nc, 4096)
	status, err := br.ReadString('\n')
	if err != nil {
		return fail(err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		return fail(fmt.Errorf("bench: handshake refused: %s", strings.TrimSpace(status)))
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return fail(err)
		}
		if line == "\r\n" {
			break
		}
	}
	g := &Greeting{}
	read := func() ([]byte, error) {
		for {
			op, p, err := readFrame(br)
			if err != nil {
				return nil, err
			}
			if op == 1 {
				return p, nil
			}
			if op == 8 {
				return nil, fmt.Errorf("bench: closed during setup: %q", p)
			}
		}
	}
	if g.Frames, err = proto.setup(nc, read, user, rooms); err != nil {
		return fail(err)
	}
	g.Took = time.Since(start)
	_ = nc.SetDeadline(time.Time{})
	return nc, br, g, nil
}

// readFrame reads one unmasked server frame with blocking I/O.
func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var h [10]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return 0, nil, err
	}
	n := int(h[1] & 0x7F)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, h[2:4]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		if _, err := io.ReadFull(r, h[2:10]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint64(h[2:10]))
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return h[0] & 0x0F, p, err
}

// Send writes a masked client frame made by Mask. It never blocks.
func (c *Conn) Send(frame []byte) error {
	_, err := c.nc.Write(frame)
	return err
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

var pongFrame = []byte{0x8A, 0x80, 0, 0, 0, 0}

func (e *Engine) onData(nc *nbio.Conn, data []byte) {
	c, ok := nc.Session().(*Conn)
	if !ok {
		return
	}
	e.parse(c, data)
}

// parse consumes data (after any pending partial frame) and dispatches
// complete frames. It runs on the connection's poller goroutine.
func (e *Engine) parse(c *Conn, data []byte) {
	b := data
	if len(c.pend) > 0 {
		c.pend = append(c.pend, data...)
		b = c.pend
	}
	for {
		if len(b) < 2 {
			break
		}
		n, h := int(b[1]&0x7F), 2
		switch n {
		case 126:
			if len(b) < 4 {
				goto partial
			}
			n, h = int(binary.BigEndian.Uint16(b[2:4])), 4
		case 127:
			if len(b) < 10 {
				goto partial
			}
			n, h = int(binary.BigEndian.Uint64(b[2:10])), 10
		}
		if len(b) < h+n {
			break
		}
		switch b[0] & 0x0F {
		case 1:
			if e.proto != nil && e.proto.ping != nil && c.nc != nil && e.proto.ping(b[h:h+n]) {
				_, _ = c.nc.Write(e.proto.pingReply)
			}
			if e.OnText != nil {
				e.OnText(c, b[h:h+n])
			}
		case 9:
			if c.nc != nil {
				_, _ = c.nc.Write(pongFrame)
			}
		case 8:
			e.closeFrames.Add(1)
			reason := string(b[h : h+n])
			if n >= 2 {
				reason = strconv.Itoa(int(binary.BigEndian.Uint16(b[h:]))) + " " + string(b[h+2:h+n])
			}
			e.lastClose.Store(&reason)
			if c.nc != nil {
				_ = c.nc.Close()
			}
			return
		}
		b = b[h+n:]
	}
partial:
	if len(b) == 0 {
		c.pend = c.pend[:0]
		return
	}
	// Keep the rest; copy when it still points into data (owned by nbio).
	if len(c.pend) == 0 || &b[0] != &c.pend[0] {
		c.pend = append(c.pend[:0], b...)
	} else {
		c.pend = c.pend[:len(b)]
	}
}

// Mask returns payload as a masked client text frame. The mask key is
// fixed: the harness encodes frames once up front, and a key only has to
// be unpredictable to hostile intermediaries, which a loopback bench has
// none of.
func Mask(payload []byte) []byte {
	n := len(payload)
	var out []byte
	switch {
	case n < 126:
		out = append(make([]byte, 0, 6+n), 0x81, 0x80|byte(n))
	case n <= 0xFFFF:
		out = append(make([]byte, 0, 8+n), 0x81, 0x80|126, byte(n>>8), byte(n))
	default:
		out = make([]byte, 10, 14+n)
		out[0], out[1] = 0x81, 0x80|127
		binary.BigEndian.PutUint64(out[2:], uint64(n))
	}
	out = append(out, maskKey[:]...)
	start := len(out)
	out = append(out, payload...)
	for i := range out[start:] {
		out[start+i] ^= maskKey[i&3]
	}
	return out
}

var maskKey = [4]byte{0x37, 0xFA, 0x21, 0x3D}

// field returns the unsigned integer after `"key":` in payload.
func field(payload []byte, key string) (uint64, bool) {
	i := bytes.Index(payload, []byte(key))
	if i < 0 {
		return 0, false
	}
	var v uint64
	j := i + len(key)
	for ; j < len(payload) && payload[j] >= '0' && payload[j] <= '9'; j++ {
		v = v*10 + uint64(payload[j]-'0')
	}
	return v, j > i+len(key)
}
