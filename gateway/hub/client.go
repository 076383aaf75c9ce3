package hub

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatgw/gateway/codec"
)

// Sink is the socket a Client writes to. Write must not block: it sends what
// the kernel takes and queues the rest (nbio.Conn.Write does exactly this).
// Write must not keep b after returning: fan-out reuses its buffer.
// Close drops the connection at once.
//
// A sink may also tell how many bytes its kernel socket holds that the
// peer has not been sent yet (see kernelUnsent): a TCP socket (a
// syscall.Conn such as *nbio.Conn) is asked with SIOCOUTQNSD on Linux, and
// anything with an Unsent() int64 method is asked that. Those bytes count
// towards the outbound cap: a socket that is not drained holds several
// megabytes of them before its writes stop being taken (Linux grows a
// socket's send buffer up to net.ipv4.tcp_wmem's maximum, 4 MiB by
// default). A sink with SetLinger is reset rather than closed when it is
// dropped at the end of a close grace (see abort).
type Sink interface {
	Write(b []byte) (int, error)
	Close() error
}

// Client is one connection as the hub sees it. Its fields are flat and small
// on purpose: a node holds hundreds of thousands of them.
//
// Lock order: Room.mu before Client.mu. Every write to the sink happens
// under mu, which is what orders a room's joined frame before its live
// messages and keeps a batch from being split by another writer.
//
// The small fields are packed after mu so that the struct fits the
// 128-byte allocation class.
type Client struct {
	User string // user id; read-only

	hub  *Hub
	sink Sink

	mu        sync.Mutex
	closing   bool        // under mu: a close frame was sent; nothing else will be
	regShard  uint8       // place in the hub's registry, under its shard lock
	closeCode uint16      // under mu: the code of that close frame (0: none sent)
	gone      atomic.Bool // removed from the hub
	regIdx    int32
	overSince uint32    // under mu: hub clock (see Hub.clock) when the backlog with the kernel's share was seen over the cap; 0: it was not
	owed      uint16    // under mu: replies owed to accepted requests (see Owe)
	waiting   bool      // under mu: a close waits for the owed replies; only they are written
	rooms     []*Member // under mu: memberships, the personal inbox included
	queued    int64     // under mu: bytes handed to sink

	written  atomic.Int64 // bytes the socket took (see Written)
	lastSeen atomic.Int64 // Unix ns of the last frame received
}

// Written records n bytes taken by the socket. The gateway calls it from
// nbio's written-size callback; pending bytes are queued minus written.
func (c *Client) Written(n int) { c.written.Add(int64(n)) }

// Seen records that a frame (data or control) arrived at now (Unix ns).
func (c *Client) Seen(now int64) { c.lastSeen.Store(now) }

// Pending returns the bytes handed to the socket that it has not taken yet.
func (c *Client) Pending() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued - c.written.Load()
}

// Send writes one complete frame to the client, unless it is closing: a
// reply, which is written while a close waits for owed replies too (see
// Owe). When the bytes the socket has not taken exceed the hub's cap
// afterwards, the client is closed as a slow consumer (4001).
func (c *Client) Send(frame []byte) {
	c.mu.Lock()
	c.writeLocked(frame)
	c.mu.Unlock()
}

// The cap is checked after the write, on what has not reached the peer.
//
// What the socket did not take (queued minus written, known after every
// write) closes the client as soon as it passes the cap: a large
// coalesced batch to a client that reads is fine, a client that does not
// read is closed once its backlog passes the cap. That backlog is thus
// bounded by the cap plus one write (fan-out bounds those, see
// maxWriteBytes), and every frame before the close frame is whole.
//
// But a socket takes a lot before it stops taking: Linux grows a send
// buffer up to net.ipv4.tcp_wmem's maximum (4 MiB by default), so a peer
// that stopped reading had megabytes queued in the kernel, outside the
// cap, before the above could see anything. So each time another
// unsentStep of bytes has been queued (a syscall per unsentStep bytes, not
// per write), what the kernel holds unsent (kernelUnsent) is added, and a
// client whose backlog counted so is over the cap at two such looks
// BacklogGrace apart, with none in between under it, is closed too. The
// grace lets a reader that keeps up drain a burst written all at once (a
// coalesced pass, a history page), which sits unsent for a moment on any
// socket; a peer that does not read stays over it. Such a backlog is
// bounded by the cap plus what is queued to the client in BacklogGrace
// (at least unsentStep).
func (c *Client) sendLocked(b []byte) {
	if c.waiting {
		return // only owed replies go out now
	}
	c.writeLocked(b)
}

// writeLocked is sendLocked for replies, which go out while a close waits
// for them.
func (c *Client) writeLocked(b []byte) {
	if c.closing {
		return
	}
	before := c.queued
	c.queued += int64(len(b))
	if _, err := c.sink.Write(b); err != nil {
		// The socket is gone; nbio reports the close and the gateway
		// removes the client. Stop writing to it meanwhile.
		c.closing = true
		return
	}
	max := c.hub.cfg.MaxOutboundBytes
	if max <= 0 {
		return
	}
	backlog := c.queued - c.written.Load()
	if step := unsentStep(max); backlog <= max && before/step != c.queued/step {
		backlog += kernelUnsent(c.sink)
		if backlog <= max {
			c.overSince = 0
			return
		}
		now := c.hub.clock()
		if c.overSince == 0 {
			c.overSince = now
			return
		}
		if time.Duration(now-c.overSince)*time.Microsecond < c.hub.cfg.BacklogGrace {
			return
		}
	}
	if backlog > max {
		c.hub.stats.slowConsumers.Add(1)
		c.closeLocked(CloseSlowConsumer, "slow consumer: outbound buffer over its cap")
	}
}

// unsentStep is how many bytes are queued to a client between two looks
// at what its kernel socket holds unsent: an eighth of the cap.
func unsentStep(max int64) int64 { return (max + 7) / 8 }

// Close codes the hub sends itself.
const (
	CloseNormal       = 1000
	CloseGoingAway    = 1001
	CloseSlowConsumer = 4001
)

// Close sends a close frame with code and reason, after whatever is already
// queued, and stops all further writes. The peer is given the hub's grace
// period to read it and answer before the socket is dropped (Tick does it),
// because dropping a socket at once can turn the close frame into a reset
// that the peer never reads.
//
// While replies are owed (see Owe), the close waits for them: deliveries
// stop at once, the owed replies are written, then the close frame.
func (c *Client) Close(code int, reason string) {
	c.mu.Lock()
	c.closeLocked(code, reason)
	c.mu.Unlock()
}

func (c *Client) closeLocked(code int, reason string) {
	if c.closing || c.waiting {
		return
	}
	if c.owed > 0 {
		c.waiting = true
		c.hub.waitAdd(c, code, reason)
		return
	}
	c.sendClose(code, reason)
}

// sendClose writes the close frame and starts the close grace. c.mu held.
func (c *Client) sendClose(code int, reason string) {
	c.closing = true
	c.closeCode = uint16(code)
	f := codec.CloseFrame(code, reason)
	c.queued += int64(len(f)) // so that Pending stays what the socket did not take
	_, _ = c.sink.Write(f)
	c.hub.closingAdd(c)
}

// CloseCode returns the code of the close frame sent to the client, or 0
// when none was (the peer dropped the socket, or it is still open).
func (c *Client) CloseCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.closeCode)
}

// Closing reports whether a close frame was sent to the client, or a
// close waits for its owed replies.
func (c *Client) Closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing || c.waiting
}

// RoomCount returns how many rooms the client is in, not counting its inbox.
func (c *Client) RoomCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.rooms {
		if !codec.IsInbox(m.room.name) {
			n++
		}
	}
	return n
}

// RoomNames returns the names of the rooms c is in, its inbox included.
func (c *Client) RoomNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.rooms))
	for i, m := range c.rooms {
		out[i] = m.room.name
	}
	return out
}

// memberOf returns c's membership of the room named name, or nil. c.mu held.
func (c *Client) memberOf(name string) *Member {
	for _, m := range c.rooms {
		if m.room.name == name {
			return m
		}
	}
	return nil
}

// memberOfRoom reports whether c is a member of r. c.mu held.
func (c *Client) memberOfRoom(r *Room) bool {
	for _, m := range c.rooms {
		if m.room == r {
			return true
		}
	}
	return false
}

// IsMember reports whether c has joined the room named name.
func (c *Client) IsMember(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.memberOf(name) != nil
}

// Client.regShard is a uint8: this fails to compile if clientShards outgrows it.
const _ = uint8(clientShards - 1)

// registry holds every client in shards, for the heartbeat sweep and drain.
type registry struct {
	mu      sync.Mutex
	clients []*Client
}

func (h *Hub) register(c *Client) {
	i := uint8(h.nextShard.Add(1) % clientShards)
	r := &h.clients[i]
	r.mu.Lock()
	c.regShard, c.regIdx = i, int32(len(r.clients))
	r.clients = append(r.clients, c)
	r.mu.Unlock()
	h.stats.conns.Add(1)
}

func (h *Hub) unregister(c *Client) {
	r := &h.clients[c.regShard]
	r.mu.Lock()
	last := len(r.clients) - 1
	moved := r.clients[last]
	r.clients[c.regIdx] = moved
	moved.regIdx = c.regIdx
	r.clients[last] = nil
	r.clients = r.clients[:last]
	r.mu.Unlock()
	h.stats.conns.Add(-1)
}
