// Package wstest is a test client for the gateway's protocol
// (docs/protocol.md) over a real socket. It speaks WebSocket with
// github.com/gorilla/websocket, a client library independent of the nbio
// server the gateway runs on, so a test checks the wire and not one
// library against itself.
//
// A Client's frames are read by a goroutine of its own into a buffered
// channel: a test waits for a frame with a timeout (Next, WaitFor),
// sends a request and gets the reply carrying its id (Request), asserts
// that nothing arrives (Quiet), or waits for the close (ExpectClose,
// UntilClose). Every failure fails the test given to Dial or New, naming
// the client's user; none of these methods may be called from a goroutine
// other than the test's. Tests that need the socket itself (raw frames,
// control frames, a reader that stops reading) use WS, or Upgrade.
package wstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// DefaultTimeout is how long a Client waits for a frame unless its
	// Timeout says otherwise.
	DefaultTimeout = 5 * time.Second
	// CloseSlack is how much longer than its Timeout ExpectClose and
	// UntilClose wait for the connection to end.
	CloseSlack = 2 * time.Second
)

// Frame is one server frame: a JSON object.
type Frame map[string]any

// Str is the string at k, "" when absent or not a string.
func (f Frame) Str(k string) string { s, _ := f[k].(string); return s }

// Num is the number at k, 0 when absent or not a number.
func (f Frame) Num(k string) uint64 { v, _ := f[k].(float64); return uint64(v) }

// An Option changes how Dial and Upgrade connect.
type Option func(*options)

type options struct {
	dialer *websocket.Dialer
	header http.Header
}

// Header sends h with the upgrade request.
func Header(h http.Header) Option { return func(o *options) { o.header = h } }

// Dialer connects with d instead of websocket.DefaultDialer.
func Dialer(d *websocket.Dialer) Option { return func(o *options) { o.dialer = d } }

func dial(rawURL string, opts []Option) (*websocket.Conn, *http.Response, error) {
	o := options{dialer: websocket.DefaultDialer}
	for _, opt := range opts {
		opt(&o)
	}
	return o.dialer.Dial(rawURL, o.header)
}

// Upgrade dials rawURL and returns the HTTP status of a refused upgrade,
// or 101 and the connection, closed at the end of t. It fails t when no
// HTTP answer came at all.
func Upgrade(t testing.TB, rawURL string, opts ...Option) (int, *websocket.Conn) {
	t.Helper()
	ws, resp, err := dial(rawURL, opts)
	if err == nil {
		t.Cleanup(func() { _ = ws.Close() })
		return resp.StatusCode, ws
	}
	if resp == nil {
		t.Fatalf("dial %s: %v (no HTTP answer)", rawURL, err)
	}
	return resp.StatusCode, nil
}

// Dial connects to rawURL or fails t, and starts reading (see New). The
// client's User is the URL's user query parameter, if any. The connection
// is closed at the end of t.
func Dial(t testing.TB, rawURL string, opts ...Option) *Client {
	t.Helper()
	ws, resp, err := dial(rawURL, opts)
	if err != nil {
		if resp != nil {
			t.Fatalf("dial %s: %v (HTTP %d)", rawURL, err, resp.StatusCode)
		}
		t.Fatalf("dial %s: %v", rawURL, err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	user := ""
	if u, err := url.Parse(rawURL); err == nil {
		user = u.Query().Get("user")
	}
	return New(t, ws, user)
}

// Client is a test connection whose frames are read by a goroutine into a
// channel, so a test can wait for a frame with a timeout.
type Client struct {
	// User names the client in failure messages.
	User string
	// WS is the connection. Its reads belong to the client's goroutine;
	// a test may write to it, set handlers, or close it.
	WS *websocket.Conn
	// Frames carries the frames in the order they were read; it is closed
	// when the connection ends. Reading it directly skips the held frames
	// (see Request).
	Frames <-chan Frame
	// Closed receives, once, the read error that ended the connection
	// (a *websocket.CloseError when a close frame came).
	Closed <-chan error
	// Seen are the frames WaitFor skipped, for failure messages.
	Seen []Frame
	// Timeout is how long Next, WaitFor and Request wait for a frame;
	// DefaultTimeout unless set.
	Timeout time.Duration

	t      testing.TB
	frames chan Frame
	closed chan error
	held   []Frame // frames Request read past its reply, in order: read first by Next, WaitFor, Quiet, UntilClose
}

// New makes a Client of the open connection ws, named user in failure
// messages, and starts reading it.
func New(t testing.TB, ws *websocket.Conn, user string) *Client {
	c := &Client{User: user, WS: ws, Timeout: DefaultTimeout, t: t,
		frames: make(chan Frame, 4096), closed: make(chan error, 1)}
	c.Frames, c.Closed = c.frames, c.closed
	go c.read()
	return c
}

func (c *Client) read() {
	for {
		mt, b, err := c.WS.ReadMessage()
		if err != nil {
			c.end(err)
			return
		}
		if mt != websocket.TextMessage {
			c.end(fmt.Errorf("non-text frame type %d", mt))
			return
		}
		var f Frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.end(fmt.Errorf("frame is not a JSON object: %q: %v", b, err))
			return
		}
		c.frames <- f
	}
}

func (c *Client) end(err error) {
	c.closed <- err
	close(c.frames)
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// Close closes the connection.
func (c *Client) Close() error { return c.WS.Close() }

// Send writes v as one text frame: a string as it is, anything else as
// JSON.
func (c *Client) Send(v any) {
	c.t.Helper()
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := c.WS.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("%s: write: %v", c.User, err)
	}
}

// Next returns the next frame, held ones first, failing the test after
// Timeout.
func (c *Client) Next() Frame {
	c.t.Helper()
	if len(c.held) > 0 {
		f := c.held[0]
		c.held = c.held[1:]
		return f
	}
	return c.Fresh()
}

// Fresh is Next without the held frames.
func (c *Client) Fresh() Frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("%s: connection ended: %v", c.User, <-c.closed)
		}
		return f
	case <-time.After(c.timeout()):
		c.t.Fatalf("%s: no frame within %v (skipped: %v)", c.User, c.timeout(), c.Seen)
	}
	return nil
}

// WaitFor returns the first frame of type typ (any type when typ is "")
// for which match (if not nil) holds, held frames first; the frames
// skipped are dropped (and kept in Seen). It fails the test when none
// comes within Timeout.
func (c *Client) WaitFor(typ string, match func(Frame) bool) Frame {
	c.t.Helper()
	is := func(f Frame) bool { return (typ == "" || f.Str("type") == typ) && (match == nil || match(f)) }
	what := typ
	if what == "" {
		what = "matching"
	}
	for len(c.held) > 0 {
		f := c.held[0]
		c.held = c.held[1:]
		if is(f) {
			return f
		}
		c.Seen = append(c.Seen, f)
	}
	deadline := time.After(c.timeout())
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("%s: connection ended waiting for %s: %v (skipped: %v)", c.User, what, <-c.closed, c.Seen)
			}
			if is(f) {
				return f
			}
			c.Seen = append(c.Seen, f)
		case <-deadline:
			c.t.Fatalf("%s: no %s frame within %v (skipped: %v)", c.User, what, c.timeout(), c.Seen)
		}
	}
}

// Request sends v, which must have a string "id", and returns the reply
// carrying that id. The frames read before it are held for the next reads,
// in order: a reply's place among deliveries and events is not fixed (a
// sender's own message may come before or after its ack, docs/protocol.md
// "Own sends").
func (c *Client) Request(v map[string]any) Frame {
	c.t.Helper()
	id, ok := v["id"].(string)
	if !ok {
		c.t.Fatalf("%s: request %v without a string id", c.User, v)
	}
	c.Send(v)
	for {
		f := c.Fresh()
		if f.Str("id") == id {
			return f
		}
		c.held = append(c.held, f)
	}
}

// Quiet asserts that no frame of type typ (of any type when typ is "")
// arrives within d, held frames included; the others are dropped. A
// connection that ends meanwhile fails the test: a closed connection
// would pass any "nothing arrives" check.
func (c *Client) Quiet(typ string, d time.Duration) {
	c.t.Helper()
	for _, f := range c.held {
		if typ == "" || f.Str("type") == typ {
			c.t.Fatalf("%s: unexpected frame %v", c.User, f)
		}
	}
	c.held = nil
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("%s: connection closed while waiting for quiet", c.User)
			}
			if typ == "" || f.Str("type") == typ {
				c.t.Fatalf("%s: unexpected frame %v", c.User, f)
			}
		case <-deadline:
			return
		}
	}
}

// ExpectClose waits, skipping frames, for the connection to end with a
// close frame of code.
func (c *Client) ExpectClose(code int) {
	c.t.Helper()
	d := c.timeout() + CloseSlack
	deadline := time.After(d)
	for {
		select {
		case _, ok := <-c.frames:
			if ok {
				continue
			}
			err := <-c.closed
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				c.t.Fatalf("%s: connection ended with %v, want close %d", c.User, err, code)
			}
			if ce.Code != code {
				c.t.Fatalf("%s: close code %d (%q), want %d", c.User, ce.Code, ce.Text, code)
			}
			return
		case <-deadline:
			c.t.Fatalf("%s: not closed within %v, want close %d", c.User, d, code)
		}
	}
}

// UntilClose reads until the connection ends and returns the frames it
// read, held ones first, and the close code (0 when it ended without a
// close frame).
func (c *Client) UntilClose() ([]Frame, int) {
	c.t.Helper()
	got := c.held
	c.held = nil
	d := c.timeout() + CloseSlack
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-c.frames:
			if ok {
				got = append(got, f)
				continue
			}
			return got, CloseCode(<-c.closed)
		case <-deadline:
			c.t.Fatalf("%s: not closed within %v", c.User, d)
		}
	}
}

// CloseCode is the code of the close frame that err reports, 0 when err
// is not a *websocket.CloseError.
func CloseCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// Join joins room (request id "j-<room>") and returns the joined reply.
func (c *Client) Join(room string) Frame {
	c.t.Helper()
	j := c.Request(map[string]any{"type": "join", "id": "j-" + room, "room": room})
	if j.Str("type") != "joined" {
		c.t.Fatalf("%s: join %s: %v", c.User, room, j)
	}
	return j
}

// SendText sends text to room (request id "s-<text>") and returns the ack.
func (c *Client) SendText(room, text string) Frame {
	c.t.Helper()
	a := c.Request(map[string]any{"type": "send", "id": "s-" + text, "room": room, "text": text})
	if a.Str("type") != "ack" {
		c.t.Fatalf("%s: send %q: %v", c.User, text, a)
	}
	return a
}

// ExpectError fails t unless f is an error frame of code with a message.
func ExpectError(t testing.TB, f Frame, code string) {
	t.Helper()
	if f.Str("type") != "error" || f.Str("code") != code {
		t.Fatalf("got %v, want error %s", f, code)
	}
	if strings.TrimSpace(f.Str("message")) == "" {
		t.Fatalf("error without a message: %v", f)
	}
}
