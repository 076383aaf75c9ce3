package hub

import (
	"hash/maphash"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatgw/gateway/codec"
)

const (
	roomShards   = 64
	clientShards = 64
)

// Config sets the hub's limits.
type Config struct {
	// MaxOutboundBytes caps a client's pending outbound bytes; a frame that
	// would exceed it closes the client with 4001. 0 means no cap. Bytes
	// the kernel holds unsent count too, once they have stayed over the
	// cap for BacklogGrace (see Client.sendLocked).
	MaxOutboundBytes int64
	// BacklogGrace is how long a backlog that is over MaxOutboundBytes
	// only with the kernel's unsent bytes counted may stay so before the
	// client is closed: time for a reader to drain a burst. 0 means
	// DefaultBacklogGrace.
	BacklogGrace time.Duration
	// PresenceMaxMembers: rooms with more distinct users get no presence
	// events.
	PresenceMaxMembers int
	// CloseGrace is how long (ns) a closing client may take to read its
	// close frame before the socket is dropped.
	CloseGrace int64
	// Workers is the number of fan-out goroutines (at least 1).
	Workers int
	// SplitRoomsAbove: a room that has had more members than this is fanned
	// out by every worker at once, each writing to its own share of the
	// clients, so one big room is not one core's worth of syscalls.
	// 0 never splits.
	SplitRoomsAbove int
	// Budget bounds how long a busy worker holds messages so that several
	// share each write: a held pass starts by Budget after its oldest
	// message was queued, less the last pass's cost (budget.go). 0 never
	// holds.
	Budget time.Duration
	// Observer, when set, is told about fan-out passes (see Observer).
	Observer Observer
}

// DefaultBacklogGrace is Config.BacklogGrace's default.
const DefaultBacklogGrace = time.Second

// Hub is the set of clients and rooms of one node.
type Hub struct {
	cfg  Config
	seed maphash.Seed

	start time.Time // the origin of clock

	rooms   [roomShards]roomShard
	clients [clientShards]registry

	workers   []*worker
	nextShard atomic.Uint64

	closingMu sync.Mutex
	closingQ  []closingEntry
	waitQ     map[*Client]waitEntry // closes waiting for owed replies, under closingMu

	stats    stats
	inflight atomic.Int64 // deliveries queued and not yet fanned out
}

type roomShard struct {
	mu    sync.Mutex
	rooms map[string]*Room
}

// Room is a set of members with the per-user state presence, typing and
// read receipts need. It exists while it has members or a Publish is using
// it. Every connection has one of its own (its inbox), so a Room is kept to
// 64 bytes: the worker is an index, and the per-user state is only made
// when a user has a second connection in the room or types or sends a read
// receipt there.
//
// Distinct users are counted without a per-user map, which cost about 58
// bytes per membership: a user's connections on this node are the members
// of its inbox (every connection joins its inbox before any other room and
// leaves it after all of them, and only the inbox's user may join it), so
// whether a joining or leaving connection's user has another connection in
// a room is asked there (otherConnIn), and a room keeps only how many of
// its members are a user's second or later connection in it (dups).
type Room struct {
	name string

	mu      sync.Mutex
	busy    int32  // Publish calls holding the room without membership
	worker  uint16 // index in Hub.workers
	dead    bool
	split   bool // fanned out by every worker; sticky, see worker.deliverRun
	members []*Member
	users   *roomUsers // nil until needed
}

// roomUsers is a room's per-user bookkeeping, kept apart from Room because
// most rooms (inboxes) never need it.
type roomUsers struct {
	// dups counts the members that are not their user's only connection
	// in the room: the distinct users are len(members) - dups.
	dups int32
	// acts has the state of the users that typed or sent read receipts,
	// which most never do; it goes when the user's last connection does.
	acts map[string]*userActs
}

type userActs struct {
	typingAt int64 // Unix ns of the last forwarded typing
	readSeq  uint64
}

// The methods below on a Room's users are called with r.mu held.

func (r *Room) dups() int32 {
	if r.users == nil {
		return 0
	}
	return r.users.dups
}

// userCount returns the number of distinct users with a connection in r.
func (r *Room) userCount() int {
	if codec.IsInbox(r.name) {
		return min(len(r.members), 1)
	}
	return len(r.members) - int(r.dups())
}

// firstConn reports whether c, joining r, would be its user's first
// connection in r. Called with r's lock held and c's not.
func (h *Hub) firstConn(r *Room, c *Client) bool {
	if codec.IsInbox(r.name) {
		return len(r.members) == 0
	}
	return !h.otherConnIn(r, c)
}

// addDup counts a member that is not its user's first connection in r.
func (r *Room) addDup() {
	if r.users == nil {
		r.users = &roomUsers{}
	}
	r.users.dups++
}

// removeUser counts c leaving r, after its member was removed, and reports
// whether it was its user's last connection in r. Called with r's lock
// held and c's not.
func (h *Hub) removeUser(r *Room, c *Client) (last bool) {
	switch {
	case codec.IsInbox(r.name):
		last = len(r.members) == 0
	case r.dups() == 0: // every member is its user's only one: c was
		last = true
	case h.otherConnIn(r, c):
		r.users.dups--
		return false
	default:
		last = true
	}
	if last && r.users != nil {
		delete(r.users.acts, c.User)
	}
	return last
}

// otherConnIn reports whether a connection of c's user other than c is a
// member of r, which is not an inbox. It looks through the user's inbox,
// whose members are the user's connections on this node. Lock order: r's,
// then the inbox's, then each other connection's, one at a time; nothing
// locks a room while holding an inbox's lock, nor a room while holding a
// client's.
func (h *Hub) otherConnIn(r *Room, c *Client) bool {
	ib := h.lookup(codec.Inbox(c.User))
	if ib == nil {
		return false
	}
	defer ib.mu.Unlock()
	for _, m := range ib.members {
		o := m.client
		if o == c {
			continue
		}
		o.mu.Lock()
		in := o.memberOfRoom(r)
		o.mu.Unlock()
		if in {
			return true
		}
	}
	return false
}

// userActs returns the typing and read state of user, who must have a
// connection in r.
func (r *Room) userActs(user string) *userActs {
	if r.users == nil {
		r.users = &roomUsers{}
	}
	if r.users.acts == nil {
		r.users.acts = make(map[string]*userActs)
	}
	a := r.users.acts[user]
	if a == nil {
		a = &userActs{}
		r.users.acts[user] = a
	}
	return a
}

// appendUsers appends the name of every distinct user in r to dst,
// sorted.
func (r *Room) appendUsers(dst []string) []string {
	n := len(dst)
	for _, m := range r.members {
		dst = append(dst, m.client.User)
	}
	sort.Strings(dst[n:])
	if r.dups() > 0 || codec.IsInbox(r.name) {
		dst = append(dst[:n], slices.Compact(dst[n:])...)
	}
	return dst
}

// Member is one client's membership of one room. Every connection has one
// per room it is in, its inbox included, so it is kept to 32 bytes.
type Member struct {
	room    *Room
	client  *Client
	from    uint64 // under client.mu: live messages with seq <= from were covered by joined; while pending, the highest seq fanned out meanwhile
	idx     int32  // index in room.members, under room.mu
	active  bool   // under client.mu: false once left
	pending bool   // under client.mu: joining, sent nothing yet (see JoinBegin)
}

// New returns a hub and starts its fan-out workers.
func New(cfg Config) *Hub {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.Workers > math.MaxUint16 {
		cfg.Workers = math.MaxUint16 // Room.worker is a uint16
	}
	if cfg.BacklogGrace <= 0 {
		cfg.BacklogGrace = DefaultBacklogGrace
	}
	h := &Hub{cfg: cfg, seed: maphash.MakeSeed(), start: time.Now()}
	for i := range h.rooms {
		h.rooms[i].rooms = make(map[string]*Room)
	}
	for i := 0; i < cfg.Workers; i++ {
		h.workers = append(h.workers, newWorker(h, i))
	}
	for _, w := range h.workers { // all exist before any runs: they forward to each other
		go w.run()
	}
	return h
}

// clock returns microseconds since the hub started, plus one (so that 0
// can mean "never"), wrapping every 71 minutes: only differences of it are
// taken, for durations (BacklogGrace) far shorter than that.
func (h *Hub) clock() uint32 { return uint32(time.Since(h.start)/time.Microsecond) + 1 }

// Stop ends the fan-out workers after they drain what is queued.
func (h *Hub) Stop() {
	// Workers forward to each other (split rooms), so none may exit while
	// any still has work: wait until every queued delivery is done.
	for h.inflight.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	for _, w := range h.workers {
		w.stop()
	}
}

// NewClient registers a client writing to sink.
func (h *Hub) NewClient(user string, sink Sink, now int64) *Client {
	c := &Client{User: user, hub: h, sink: sink}
	c.lastSeen.Store(now)
	h.register(c)
	return c
}

// Remove takes a closed client out of every room and the registry, and
// returns the names of the rooms it was in (pending joins included).
// offline is called per room the user has now left entirely, so the
// caller can announce presence. Removing twice is harmless (the second
// returns nothing).
func (h *Hub) Remove(c *Client, offline func(room string, usersBefore int)) []string {
	if c.gone.Swap(true) {
		return nil
	}
	c.mu.Lock()
	c.closing = true
	rooms := append([]*Member(nil), c.rooms...)
	c.mu.Unlock()
	// The inbox last: until then it lists c among its user's connections,
	// which the other rooms' user counts rely on (otherConnIn).
	for i, m := range rooms {
		if codec.IsInbox(m.room.name) {
			last := len(rooms) - 1
			rooms[i], rooms[last] = rooms[last], rooms[i]
			break
		}
	}
	names := make([]string, 0, len(rooms))
	for _, m := range rooms {
		if h.leave(m, offline) {
			names = append(names, m.room.name)
		}
	}
	h.unregister(c)
	return names
}

func (h *Hub) shard(name string) *roomShard {
	return &h.rooms[maphash.String(h.seed, name)%roomShards]
}

// acquire returns the live room called name, creating it, with its lock
// held and busy counted, so an empty room is not deleted under the caller.
func (h *Hub) acquire(name string) *Room {
	s := h.shard(name)
	for {
		s.mu.Lock()
		r := s.rooms[name]
		if r == nil {
			r = &Room{name: name, worker: uint16(maphash.String(h.seed, name) % uint64(len(h.workers)))}
			s.rooms[name] = r
			h.stats.rooms.Add(1)
		}
		s.mu.Unlock()
		r.mu.Lock()
		if !r.dead {
			r.busy++
			return r
		}
		r.mu.Unlock()
	}
}

// release undoes acquire: it drops busy, deletes the room when nothing
// holds it any more, and unlocks it.
func (h *Hub) release(r *Room) {
	r.busy--
	empty := r.busy == 0 && len(r.members) == 0
	if empty {
		r.dead = true
	}
	r.mu.Unlock()
	if empty {
		s := h.shard(r.name)
		s.mu.Lock()
		if s.rooms[r.name] == r {
			delete(s.rooms, r.name)
			h.stats.rooms.Add(-1)
		}
		s.mu.Unlock()
	}
}

// lookup returns the live room called name with its lock held, or nil.
func (h *Hub) lookup(name string) *Room {
	s := h.shard(name)
	s.mu.Lock()
	r := s.rooms[name]
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	if r.dead {
		r.mu.Unlock()
		return nil
	}
	return r
}

// Leave removes c from the room called name. It reports whether c was a
// member; offline is called (under no lock of c) when c's user has no
// connection left in the room, with the distinct user count before leaving.
func (h *Hub) Leave(c *Client, name string, offline func(room string, usersBefore int)) bool {
	c.mu.Lock()
	m := c.memberOf(name)
	c.mu.Unlock()
	if m == nil {
		return false
	}
	return h.leave(m, offline)
}

func (h *Hub) leave(m *Member, offline func(string, int)) bool {
	r, c := m.room, m.client
	r.mu.Lock()
	c.mu.Lock()
	if !m.active {
		c.mu.Unlock()
		r.mu.Unlock()
		return false
	}
	m.active = false
	for i, x := range c.rooms {
		if x == m {
			last := len(c.rooms) - 1
			c.rooms[i] = c.rooms[last]
			c.rooms[last] = nil
			c.rooms = c.rooms[:last]
			break
		}
	}
	c.mu.Unlock()
	usersBefore := r.userCount()
	last := len(r.members) - 1
	moved := r.members[last]
	r.members[m.idx] = moved
	moved.idx = m.idx
	r.members[last] = nil
	r.members = r.members[:last]
	h.stats.members.Add(-1)
	lastConn := h.removeUser(r, c)
	r.busy++ // release deletes the room if this emptied it
	h.release(r)
	if lastConn && offline != nil {
		offline(r.name, usersBefore)
	}
	return true
}

// Publish stores and fans out one message of the room called name. Under
// the room's lock it calls store, which returns the message's frame and seq
// (or ok false to publish nothing); the frame is queued for every member
// then, so members see the room's messages in store order.
func (h *Hub) Publish(name string, store func() (frame []byte, seq uint64, ok bool)) {
	r := h.acquire(name)
	frame, seq, ok := store()
	if ok && len(r.members) > 0 {
		h.workers[r.worker].enqueue(delivery{room: r, frame: frame, seq: seq, kind: KindMessage})
	}
	h.release(r)
}

// Broadcast queues a frame of kind that is not part of the room's history
// (typing, read, presence) for every member but exclude.
func (h *Hub) Broadcast(name string, frame []byte, exclude *Client, kind Kind) {
	r := h.lookup(name)
	if r == nil {
		return
	}
	if len(r.members) > 0 {
		h.workers[r.worker].enqueue(delivery{room: r, frame: frame, exclude: exclude, kind: kind})
	}
	r.mu.Unlock()
}

// Reset starts a room's seq over for its members: each is sent frame (the
// unsolicited joined of a room whose history was lost) and from then on
// receives the messages after seq.
func (h *Hub) Reset(name string, seq uint64, frame []byte) {
	r := h.lookup(name)
	if r == nil {
		return
	}
	for _, m := range r.members {
		c := m.client
		c.mu.Lock()
		if m.active && !m.pending { // a pending member's own read decides what its joined says
			m.from = seq
			c.sendLocked(frame)
		}
		c.mu.Unlock()
	}
	r.mu.Unlock()
}

// Clients returns the connections that are members of the room called
// name; a user's inbox room has all of that user's connections.
func (h *Hub) Clients(name string) []*Client {
	r := h.lookup(name)
	if r == nil {
		return nil
	}
	out := make([]*Client, 0, len(r.members))
	for _, m := range r.members {
		out = append(out, m.client)
	}
	r.mu.Unlock()
	return out
}

// Typing reports whether a typing event from c in the room should be
// forwarded now: c is a member and its user has not typed there within
// every ns. It records the forward.
func (h *Hub) Typing(c *Client, name string, now, every int64) (member, forward bool) {
	return h.act(c, name, func(u *userActs) bool {
		if u.typingAt != 0 && now-u.typingAt < every {
			return false
		}
		u.typingAt = now
		return true
	})
}

// Read reports whether a read receipt from c for seq should be forwarded:
// c is a member and seq is above the user's last forwarded receipt there.
func (h *Hub) Read(c *Client, name string, seq uint64) (member, forward bool) {
	return h.act(c, name, func(u *userActs) bool {
		if seq <= u.readSeq {
			return false
		}
		u.readSeq = seq
		return true
	})
}

// act runs decide on the state of c's user in the room called name, under
// the room's lock. member is false when c has not joined the room; forward
// is what decide returned.
func (h *Hub) act(c *Client, name string, decide func(*userActs) bool) (member, forward bool) {
	r := h.lookup(name)
	if r == nil {
		return false, false
	}
	defer r.mu.Unlock()
	if !c.IsMember(name) {
		return false, false
	}
	u := r.userActs(c.User)
	return true, u != nil && decide(u)
}

// Presence returns up to max of the room's distinct users, sorted, and how
// many there are in all.
func (h *Hub) Presence(name string, max int) ([]string, int) {
	r := h.lookup(name)
	if r == nil {
		return []string{}, 0
	}
	users := r.appendUsers(make([]string, 0, len(r.members)))
	r.mu.Unlock()
	total := len(users)
	if len(users) > max {
		users = users[:max]
	}
	return users, total
}

// PresenceMaxMembers returns the configured presence event bound.
func (h *Hub) PresenceMaxMembers() int { return h.cfg.PresenceMaxMembers }
