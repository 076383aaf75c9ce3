package gateway_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/internal/gatewaytest"
	"github.com/chatgw/gateway/internal/redistest"
)

// These tests run a real node on loopback and talk to it with gorilla/websocket,
// a client library independent of nbio. They cannot run under -race: nbio's
// accept/poller hand-off trips the detector.

const waitFrame = 5 * time.Second

type node struct {
	srv *gateway.Server
	cfg gateway.Config
}

// backend is the backend the package's nodes run on. The protocol tests
// run in both modes (scripts/test.sh runs the package twice):
//
//	go test ./gateway/                   a node alone, memory store
//	go test ./gateway/ -backend=redis    each node in cluster mode on a real
//	                                     redis-server of its own
//
// Where the contract lets the modes differ, a test says so with
// clusterMode and the difference is in docs/protocol.md.
var backend = flag.String("backend", "memory", `"memory" (nodes alone) or "redis" (each node on a redis-server of its own)`)

// clusterMode reports whether nodes started with startNode run in cluster
// mode (-backend=redis).
func clusterMode(t *testing.T) bool {
	switch *backend {
	case "memory":
		return false
	case "redis":
		return true
	}
	t.Fatalf("-backend=%q: want memory or redis", *backend)
	return false
}

func startNode(t *testing.T, mutate func(*gateway.Config)) *node {
	t.Helper()
	own := false // a redis-server started for this node alone
	srv, cfg := gatewaytest.Start(t, func(c *gateway.Config) {
		if mutate != nil {
			mutate(c)
		}
		if c.RedisURL == "" && clusterMode(t) {
			c.RedisURL, own = redistest.Start(t).URL(), true
		}
	})
	n := &node{srv: srv, cfg: cfg}
	if own && cfg.AdminAddr != "" {
		waitReady(t, n, 200)
	}
	return n
}

func (n *node) wsURL(query string) string {
	u := url.URL{Scheme: "ws", Host: n.srv.Addr(), Path: "/ws", RawQuery: query}
	return u.String()
}

type frame map[string]any

func (f frame) str(k string) string { s, _ := f[k].(string); return s }
func (f frame) num(k string) uint64 { v, _ := f[k].(float64); return uint64(v) }

// client is a test connection whose frames are read by a goroutine into a
// channel, so a test can wait for a frame with a timeout.
type client struct {
	t      *testing.T
	user   string
	ws     *websocket.Conn
	frames chan frame
	closed chan error // the read error that ended the connection
	seen   []frame    // frames skipped by waitFor, for failure messages
	held   []frame    // frames request read past its reply, in order: read first by next, waitFor, quiet
}

// dial connects as user and consumes welcome and the inbox's joined frame.
func (n *node) dial(t *testing.T, user string) *client {
	t.Helper()
	c := n.dialRaw(t, "user="+user)
	w := c.next()
	if w.str("type") != "welcome" || w.str("user") != user {
		t.Fatalf("first frame %v, want welcome for %s", w, user)
	}
	j := c.next()
	if j.str("type") != "joined" || j.str("room") != "@"+user {
		t.Fatalf("second frame %v, want joined @%s", j, user)
	}
	return c
}

func (n *node) dialRaw(t *testing.T, query string) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(n.wsURL(query), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &client{t: t, ws: ws, frames: make(chan frame, 4096), closed: make(chan error, 1)}
	if q, err := url.ParseQuery(query); err == nil {
		c.user = q.Get("user")
	}
	go c.read()
	t.Cleanup(func() { _ = ws.Close() })
	return c
}

func (c *client) read() {
	for {
		mt, b, err := c.ws.ReadMessage()
		if err != nil {
			c.closed <- err
			close(c.frames)
			return
		}
		if mt != websocket.TextMessage {
			c.closed <- fmt.Errorf("non-text frame type %d", mt)
			close(c.frames)
			return
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.closed <- fmt.Errorf("frame is not a JSON object: %q: %v", b, err)
			close(c.frames)
			return
		}
		c.frames <- f
	}
}

func (c *client) send(v any) {
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
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("%s: write: %v", c.user, err)
	}
}

// next returns the next frame, failing the test after waitFrame.
func (c *client) next() frame {
	c.t.Helper()
	if len(c.held) > 0 {
		f := c.held[0]
		c.held = c.held[1:]
		return f
	}
	return c.fresh()
}

// fresh is next without the held frames.
func (c *client) fresh() frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("%s: connection ended: %v", c.user, <-c.closed)
		}
		return f
	case <-time.After(waitFrame):
		c.t.Fatalf("%s: no frame within %v (skipped: %v)", c.user, waitFrame, c.seen)
	}
	return nil
}

// waitFor returns the first frame of type typ for which match (if any)
// holds, skipping others.
func (c *client) waitFor(typ string, match func(frame) bool) frame {
	c.t.Helper()
	for len(c.held) > 0 {
		f := c.held[0]
		c.held = c.held[1:]
		if f.str("type") == typ && (match == nil || match(f)) {
			return f
		}
		c.seen = append(c.seen, f)
	}
	deadline := time.After(waitFrame)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("%s: connection ended waiting for %s: %v (skipped: %v)", c.user, typ, <-c.closed, c.seen)
			}
			if f.str("type") == typ && (match == nil || match(f)) {
				return f
			}
			c.seen = append(c.seen, f)
		case <-deadline:
			c.t.Fatalf("%s: no %s frame within %v (skipped: %v)", c.user, typ, waitFrame, c.seen)
		}
	}
}

// request sends v and returns the reply carrying its id. The frames read
// before it are held for the next reads, in order: a reply's place among
// deliveries and events is not fixed (a sender's own message may come
// before or after its ack, docs/protocol.md "Own sends").
func (c *client) request(v map[string]any) frame {
	c.t.Helper()
	id := v["id"].(string)
	c.send(v)
	for {
		f := c.fresh()
		if f.str("id") == id {
			return f
		}
		c.held = append(c.held, f)
	}
}

// quiet asserts that no frame of type typ arrives within d.
func (c *client) quiet(typ string, d time.Duration) {
	c.t.Helper()
	for _, f := range c.held {
		if typ == "" || f.str("type") == typ {
			c.t.Fatalf("%s: unexpected frame %v", c.user, f)
		}
	}
	c.held = nil
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				// A closed connection is not a quiet one: it would
				// pass any "nothing arrives" check.
				c.t.Fatalf("%s: connection closed while waiting for quiet", c.user)
			}
			if typ == "" || f.str("type") == typ {
				c.t.Fatalf("%s: unexpected frame %v", c.user, f)
			}
		case <-deadline:
			return
		}
	}
}

// expectClose waits for the connection to end with a close frame of code.
func (c *client) expectClose(code int) {
	c.t.Helper()
	deadline := time.After(waitFrame + closeSlack)
	for {
		select {
		case _, ok := <-c.frames:
			if ok {
				continue
			}
			err := <-c.closed
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				c.t.Fatalf("%s: connection ended with %v, want close %d", c.user, err, code)
			}
			if ce.Code != code {
				c.t.Fatalf("%s: close code %d (%q), want %d", c.user, ce.Code, ce.Text, code)
			}
			return
		case <-deadline:
			c.t.Fatalf("%s: not closed within %v, want close %d", c.user, waitFrame+closeSlack, code)
		}
	}
}

const closeSlack = 2 * time.Second

func (c *client) join(room string) frame {
	c.t.Helper()
	j := c.request(map[string]any{"type": "join", "id": "j-" + room, "room": room})
	if j.str("type") != "joined" {
		c.t.Fatalf("%s: join %s: %v", c.user, room, j)
	}
	return j
}

func (c *client) sendText(room, text string) frame {
	c.t.Helper()
	a := c.request(map[string]any{"type": "send", "id": "s-" + text, "room": room, "text": text})
	if a.str("type") != "ack" {
		c.t.Fatalf("%s: send %q: %v", c.user, text, a)
	}
	return a
}

func expectError(t *testing.T, f frame, code string) {
	t.Helper()
	if f.str("type") != "error" || f.str("code") != code {
		t.Fatalf("got %v, want error %s", f, code)
	}
	if strings.TrimSpace(f.str("message")) == "" {
		t.Fatalf("error without a message: %v", f)
	}
}
