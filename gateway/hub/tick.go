package hub

import (
	"time"

	"github.com/chatgw/gateway/codec"
)

// closingEntry is a client that was sent a close frame and is given until
// deadline (Unix ns, as Tick's t) to go away by itself.
type closingEntry struct {
	c        *Client
	deadline int64
}

func (h *Hub) closingAdd(c *Client) {
	h.closingMu.Lock()
	h.closingQ = append(h.closingQ, closingEntry{c: c, deadline: time.Now().UnixNano() + h.cfg.CloseGrace})
	h.closingMu.Unlock()
}

// Tick drops (resets, see abort) the sockets of closing clients whose grace
// has passed, then visits registry shard (shard mod the shard count): each
// of its clients silent for longer than idle ns is closed, every other one
// is sent a ping.
// The gateway calls Tick from one goroutine, cycling through the shards once
// per heartbeat, so every connection is pinged once per heartbeat and a
// silent one is closed between idle and idle plus one heartbeat.
func (h *Hub) Tick(shard int, t, idle int64) {
	h.closingMu.Lock()
	kept := h.closingQ[:0]
	var expired []*Client
	for _, e := range h.closingQ {
		switch {
		case e.c.gone.Load():
		case t >= e.deadline:
			expired = append(expired, e.c)
		default:
			kept = append(kept, e)
		}
	}
	clear(h.closingQ[len(kept):])
	h.closingQ = kept
	h.closingMu.Unlock()
	for _, c := range expired {
		abort(c.sink)
	}
	h.expireWaits(t)

	r := &h.clients[shard%clientShards]
	r.mu.Lock()
	for _, c := range r.clients {
		if t-c.lastSeen.Load() > idle {
			c.Close(CloseNormal, "heartbeat timeout")
			continue
		}
		// Through sendLocked, so a ping to a client that stopped reading
		// counts towards its outbound cap like any other frame.
		c.mu.Lock()
		c.sendLocked(codec.PingFrame)
		c.mu.Unlock()
	}
	r.mu.Unlock()
}

// ClientShards is the number of registry shards Tick cycles through.
const ClientShards = clientShards

// Each calls fn for every registered client, shard by shard, holding no hub
// lock during fn.
func (h *Hub) Each(fn func(*Client)) {
	var batch []*Client
	for i := range h.clients {
		r := &h.clients[i]
		r.mu.Lock()
		batch = append(batch[:0], r.clients...)
		r.mu.Unlock()
		for _, c := range batch {
			fn(c)
		}
	}
}

// EachRoom calls fn with every room's name and its distinct users, one room
// at a time, holding no hub lock while fn runs.
func (h *Hub) EachRoom(fn func(name string, users []string)) {
	var rooms []*Room
	var users []string
	for i := range h.rooms {
		s := &h.rooms[i]
		s.mu.Lock()
		rooms = rooms[:0]
		for _, r := range s.rooms {
			rooms = append(rooms, r)
		}
		s.mu.Unlock()
		for _, r := range rooms {
			r.mu.Lock()
			users = r.appendUsers(users[:0])
			r.mu.Unlock()
			if len(users) > 0 {
				fn(r.name, users)
			}
		}
	}
}
