package hub

import "time"

// Owed replies. A request the gateway has accepted is owed a reply, and
// some replies are written later and from elsewhere (in cluster mode a
// send's ack comes back from Redis on another goroutine). A close the
// gateway starts (abuse, token expiry, drain, a slow consumer, an API
// disconnect) must not overtake them: a sender that is closed before the
// ack of a stored message cannot tell it was stored. So the gateway calls
// Owe when it accepts a request and Repay once its reply is written, and a
// close asked for in between waits: deliveries stop at once, the owed
// replies are written, then the close frame goes out. The wait is bounded
// by MaxOwedWait, after which the close goes out regardless.

// MaxOwedWait bounds how long a close waits for owed replies. A reply that
// comes later is dropped. It is above the cluster's Redis timeout (3 s), so
// that only a reply that will never come is waited out.
const MaxOwedWait = 5 * time.Second

// waitEntry is a close waiting for owed replies.
type waitEntry struct {
	code     uint16
	reason   string
	deadline int64 // Unix ns, as Tick's t
}

// Owe records that the client is owed the reply to a request being
// accepted. It reports false, and records nothing, when the client is
// closing or a close waits: the request must then be dropped unanswered
// (the close frame is the answer).
func (c *Client) Owe() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.waiting || c.owed == ^uint16(0) {
		return false
	}
	c.owed++
	return true
}

// OweLater records that the reply to a request already owed one (its Owe
// succeeded and is not yet repaid) will be written after that is repaid,
// from elsewhere: the request was accepted before any close started, so
// the close waits for this reply too. Each OweLater is matched by a Repay.
func (c *Client) OweLater() {
	c.mu.Lock()
	if c.owed < ^uint16(0) {
		c.owed++
	}
	c.mu.Unlock()
}

// Repay records that an owed reply was written (with Send, before this
// call). When it was the last one and a close waits, the close goes out.
func (c *Client) Repay() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owed > 0 {
		c.owed--
	}
	if c.owed == 0 && c.waiting {
		c.releaseWait()
	}
}

// releaseWait sends the close that waited. c.mu held.
func (c *Client) releaseWait() {
	h := c.hub
	h.closingMu.Lock()
	e, ok := h.waitQ[c]
	delete(h.waitQ, c)
	h.closingMu.Unlock()
	c.waiting = false
	if ok && !c.closing { // not closed meanwhile by other means (Remove)
		c.sendClose(int(e.code), e.reason)
	}
}

// waitAdd records c's close (code, reason) until its owed replies are
// written. c.mu held.
func (h *Hub) waitAdd(c *Client, code int, reason string) {
	h.closingMu.Lock()
	if h.waitQ == nil {
		h.waitQ = make(map[*Client]waitEntry)
	}
	h.waitQ[c] = waitEntry{code: uint16(code), reason: reason, deadline: time.Now().UnixNano() + int64(MaxOwedWait)}
	h.closingMu.Unlock()
}

// expireWaits sends the closes that waited past their deadline and forgets
// those of clients already gone. Tick calls it.
func (h *Hub) expireWaits(t int64) {
	var late []*Client
	h.closingMu.Lock()
	for c, e := range h.waitQ {
		switch {
		case c.gone.Load():
			delete(h.waitQ, c)
		case t >= e.deadline:
			late = append(late, c)
		}
	}
	h.closingMu.Unlock()
	for _, c := range late {
		c.mu.Lock()
		if c.waiting {
			c.owed = 0 // replies that come later are dropped
			c.releaseWait()
		}
		c.mu.Unlock()
	}
}
