package chaos

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// A client of the run: one user in one room, sending a message every
// interval with a fresh idempotency key, reading everything, and on any
// loss of its connection reconnecting (to the next node, or through the
// front), resuming its room with since and re-sending unacknowledged
// messages with their keys: what docs/protocol.md asks of a client. A goroutine
// per client is fine here: this is the harness, not the gateway.

type sent struct {
	key, text string
}

type client struct {
	run  *Run
	id   int
	user string
	room string

	mu sync.Mutex // guards what follows, the ledger included
	ledger
	ws         *websocket.Conn
	node       int
	unacked    map[string]sent // key -> message
	nextMsg    int
	online     bool
	reconnects int
}

func newClient(r *Run, id int) *client {
	return &client{run: r, id: id, user: fmt.Sprint("c", id), room: fmt.Sprint("r", id%r.cfg.Rooms),
		node: id % len(r.cluster.Addrs), ledger: ledger{got: map[uint64]string{}}, unacked: map[string]sent{}}
}

func (c *client) addr() string {
	if c.run.cluster.Front != "" {
		return c.run.cluster.Front
	}
	return c.run.cluster.Addrs[c.node%len(c.run.cluster.Addrs)]
}

// connect dials and joins (resuming after the first time). It retries
// with backoff until it succeeds or the run stops.
func (c *client) connect(first bool) bool {
	lost := time.Now()
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if c.run.stopping() {
			return false
		}
		if attempt > 0 {
			if c.run.cluster.Front == "" {
				c.node++ // another node
			}
			time.Sleep(backoff/2 + time.Duration(randInt(int(backoff/2))))
			backoff = min(2*backoff, 2*time.Second)
		}
		d := websocket.Dialer{HandshakeTimeout: 3 * time.Second}
		ws, _, err := d.Dial("ws://"+c.addr()+"/ws?user="+c.user, nil)
		if err != nil {
			continue
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if !c.expect(ws, "welcome") {
			ws.Close()
			continue
		}
		c.mu.Lock()
		join := map[string]any{"type": "join", "id": "j", "room": c.room}
		if c.epoch != "" {
			join["since"] = map[string]any{"epoch": c.epoch, "seq": c.last}
		}
		c.mu.Unlock()
		if err := ws.WriteJSON(join); err != nil {
			ws.Close()
			continue
		}
		var j map[string]any
		ok := false
		for {
			var f map[string]any
			if err := ws.ReadJSON(&f); err != nil {
				break
			}
			if f["id"] == "j" {
				j, ok = f, f["type"] == "joined"
				break
			}
		}
		if !ok {
			ws.Close()
			continue
		}
		_ = ws.SetReadDeadline(time.Time{})
		c.joined(j, !first)
		if !first {
			c.run.reconnected(c, time.Since(lost), j["recovered"] == true)
			c.mu.Lock()
			c.reconnects++
			c.mu.Unlock()
		}
		c.mu.Lock()
		c.ws, c.online = ws, true
		c.mu.Unlock()
		c.sendUnacked()
		return true
	}
}

func (c *client) expect(ws *websocket.Conn, typ string) bool {
	var f map[string]any
	if err := ws.ReadJSON(&f); err != nil {
		return false
	}
	return f["type"] == typ
}

func (c *client) write(v any) {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws == nil {
		return
	}
	b, _ := json.Marshal(v)
	c.run.wmu(c.id).Lock()
	_ = ws.WriteMessage(websocket.TextMessage, b)
	c.run.wmu(c.id).Unlock()
}

func (c *client) frameBytes(b []byte) {
	var f map[string]any
	if json.Unmarshal(b, &f) == nil {
		c.frame(f)
	}
}

func (c *client) frame(f map[string]any) {
	switch f["type"] {
	case "message":
		if f["room"] == c.room {
			c.mu.Lock()
			c.deliverLocked(f, true)
			c.mu.Unlock()
		}
	case "joined": // the unsolicited one: the room's history was lost
		if _, ok := f["id"]; !ok && f["room"] == c.room {
			c.joined(f, false)
		}
	case "ack":
		id, _ := f["id"].(string)
		if len(id) > 2 && id[:2] == "s:" {
			key := id[2:]
			c.mu.Lock()
			s, ok := c.unacked[key]
			delete(c.unacked, key)
			c.mu.Unlock()
			if ok {
				c.run.acked(c.room, uint64(num(f["seq"])), s.text)
			}
		}
	case "error":
		// unavailable (Redis down): kept unacknowledged, sent again on
		// the next tick with the same key.
		if f["code"] == "unavailable" {
			c.run.unavailable()
		}
	}
}

// send makes the next message, or re-sends what is unacknowledged.
func (c *client) send() {
	c.mu.Lock()
	if !c.online {
		c.mu.Unlock()
		return
	}
	c.nextMsg++
	s := sent{key: randKey(), text: fmt.Sprintf("%s-%d", c.user, c.nextMsg)}
	c.unacked[s.key] = s
	c.mu.Unlock()
	c.run.sentOne()
	c.sendUnacked()
}

// sendUnacked writes every message not acknowledged yet, with its key.
func (c *client) sendUnacked() {
	c.mu.Lock()
	pending := make([]sent, 0, len(c.unacked))
	for _, s := range c.unacked {
		pending = append(pending, s)
	}
	c.mu.Unlock()
	for _, s := range pending {
		c.write(map[string]any{"type": "send", "id": "s:" + s.key, "room": c.room, "text": s.text, "key": s.key})
	}
}

// cut writes half a frame and closes the raw TCP connection: a stream cut
// mid-frame, as a dying network does.
func (c *client) cut() bool {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws == nil {
		return false
	}
	raw := ws.UnderlyingConn()
	c.run.wmu(c.id).Lock()
	// A masked text frame announcing 100 bytes, of which 10 are sent.
	_, _ = raw.Write([]byte{0x81, 0x80 | 100, 1, 2, 3, 4, 'h', 'a', 'l', 'f', ' ', 'f', 'r', 'a', 'm', 'e'})
	c.run.wmu(c.id).Unlock()
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset, not a clean close
	}
	_ = raw.Close()
	return true
}

func randKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randInt(n int) int {
	if n <= 0 {
		return 0
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return int(uint32(b[0])|uint32(b[1])<<8|uint32(b[2])<<16|uint32(b[3])<<24) % n
}
