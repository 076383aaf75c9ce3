package hub

import "github.com/chatgw/gateway/codec"

// Joining a room. The joined frame carries the room's seq (and maybe its
// recent history), and the member must then receive every message after
// that seq and none before: no gap, no duplicate. When the history is read
// under the room's lock (Join) nothing can be fanned out in between. When
// it comes from a backend that must not be waited on under a lock (Redis),
// the join is split: JoinBegin makes the member pending, the caller reads
// the history, and JoinEnd sends the frame and makes the member live. A
// pending member is sent nothing, but the fan-out notes the highest seq it
// skipped for it; JoinEnd hands that to the caller, which either covers it
// (the read already did) or reads on. Every message is then covered by the
// read (stored before it), noted (fanned out while pending) or sent live
// (fanned out after JoinEnd), provided the read starts after JoinBegin
// returns.

// JoinResult tells the caller what a join changed.
type JoinResult struct {
	Added     bool // a new membership was made (not a rejoin; c was not closing)
	Rejoin    bool // c was already a member; its membership was refreshed
	FirstConn bool // the user had no other connection in the room
	Users     int  // distinct users in the room after the join
}

// JoinBegin makes c a pending member of the room called name: it counts
// as a member (presence, RoomNames, the room is kept) but is sent nothing
// until JoinEnd. A client already a member stays as it is (Rejoin); a
// closing client is not added (neither Added nor Rejoin).
func (h *Hub) JoinBegin(c *Client, name string) JoinResult {
	r := h.acquire(name)
	defer h.release(r)
	return h.joinBegin(r, c)
}

// joinBegin is JoinBegin with r's lock held.
func (h *Hub) joinBegin(r *Room, c *Client) JoinResult {
	var res JoinResult
	c.mu.Lock()
	fresh := !c.closing && !c.waiting && c.memberOf(r.name) == nil
	res.Rejoin = !c.closing && !c.waiting && !fresh
	c.mu.Unlock()
	if fresh {
		// Asked without c's lock (firstConn takes other clients' locks);
		// only a join or leave of r could change the answer, and they
		// wait for r's lock, held here.
		first := h.firstConn(r, c)
		c.mu.Lock()
		if !c.closing && !c.waiting { // a close may have started meanwhile
			m := &Member{room: r, client: c, idx: int32(len(r.members)), active: true, pending: true}
			res.Added, res.FirstConn = true, first
			if !first && !codec.IsInbox(r.name) {
				r.addDup()
			}
			r.members = append(r.members, m)
			h.stats.members.Add(1)
			c.rooms = append(c.rooms, m)
		}
		c.mu.Unlock()
	}
	res.Users = r.userCount()
	return res
}

// JoinEnd finishes c's join of the room called name. Under the room's lock
// it calls finish with the highest seq fanned out to the room while c was
// pending (0: none, or c was a member already); finish returns the joined
// frame and the seq it covers, or ok false when it must cover more than it
// read (the caller reads on and calls JoinEnd again). On ok, c receives the
// frame before any live message of the room, then every message with a
// greater seq. JoinEnd reports false, without calling finish, when c is no
// longer in the room (its connection closed, or it left). It keeps no
// reference to the frame once it returns.
func (h *Hub) JoinEnd(c *Client, name string, finish func(noted uint64) (frame []byte, covered uint64, ok bool)) bool {
	r := h.lookup(name)
	if r == nil {
		return false
	}
	defer r.mu.Unlock()
	return h.joinEnd(c, name, finish)
}

// joinEnd is JoinEnd with the room's lock held.
func (h *Hub) joinEnd(c *Client, name string, finish func(noted uint64) ([]byte, uint64, bool)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.memberOf(name)
	if m == nil {
		return false
	}
	noted := uint64(0)
	if m.pending {
		noted = m.from
	}
	frame, covered, ok := finish(noted)
	if !ok {
		return true
	}
	m.pending, m.from = false, covered
	c.writeLocked(frame) // a reply: it goes out while a close waits for it
	return true
}

// Join makes c a member of the room called name with the history read
// under the room's lock, so that nothing is fanned out between the read
// and the frame: joined returns the joined frame and the seq that frame
// covers. If joined fails, nothing changes. Join keeps no reference to the
// frame once it returns, so the caller may reuse its buffer then.
func (h *Hub) Join(c *Client, name string, joined func() (frame []byte, covered uint64, err error)) (JoinResult, error) {
	r := h.acquire(name)
	defer h.release(r)
	frame, covered, err := joined()
	if err != nil {
		return JoinResult{}, err
	}
	res := h.joinBegin(r, c)
	if res.Added || res.Rejoin {
		h.joinEnd(c, name, func(uint64) ([]byte, uint64, bool) { return frame, covered, true })
	}
	return res, nil
}
