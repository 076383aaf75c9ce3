package hook

import "time"

// Leader is implemented by a Source shared by several nodes (cluster mode):
// only while Leader reports true does this node send message events; the
// others keep their hands off, and take over from the shared cursors when
// the lease passes.
//
// The message sender asks before it reads each batch, before each attempt
// to send it, and every min(Config.Rescan, 500ms) while it stands by. A
// node that stops being the leader abandons the batch it holds (the next
// leader reads it again from the cursor: if it was in fact delivered, it is
// repeated, the one duplicate a handover can make), forgets what it knew
// of the rooms (its cached cursors may be stale by the time it leads
// again) and ignores Stored until it leads again; it then reads Pending
// before going on, which finds every room left behind meanwhile.
//
// Leader is called from the message sender's goroutine, like the rest of
// the Source, and must be cheap: it is called for every batch. A Source
// whose lease may pass to another node and come back between two calls
// should report false once when that happened, so that the sender forgets
// what it knew.
type Leader interface {
	Leader() bool
}

// maxLeaderPoll is the longest a node that stands by waits before asking
// Leader again: a bound on how long the cluster's notifications pause at a
// handover, beyond the lease itself.
const maxLeaderPoll = 500 * time.Millisecond

// leading reports whether this node sends message events now (always,
// for a Source that is not a Leader).
func (f *messageFeed) leading() bool {
	return f.leader == nil || f.leader.Leader()
}

// follow empties the feed and has it ignore Stored, because another node
// sends the messages now: what this node knew (rooms marked, cursors read,
// the batch it held) may be stale by the time it leads again, and Pending
// will then find every room behind. Sender goroutine only.
func (f *messageFeed) follow() {
	f.mu.Lock()
	f.following = true
	clear(f.rooms)
	f.dirty = nil
	f.pending, f.backlogs = 0, 0
	f.mu.Unlock()
	f.acks = f.acks[:0]
}

// lead returns once this node is to send message events: at once when it
// is already, else after standing by (follow) until Leader reports true,
// and reading Pending. It reports false if Close came first.
func (h *Hooks) lead() bool {
	f := h.msgs
	if f.leader == nil {
		return true
	}
	f.mu.Lock()
	following := f.following
	f.mu.Unlock()
	if !following && f.leader.Leader() {
		return true
	}
	f.follow()
	if !following {
		h.log.Info("hook: another node sends message notifications; standing by")
	}
	poll := maxLeaderPoll
	if h.cfg.Rescan > 0 {
		poll = min(poll, h.cfg.Rescan)
	}
	for !f.leader.Leader() {
		if !h.pause(poll) {
			return false
		}
	}
	// Stored is heeded again before Pending is read: a message stored
	// after Pending's read is marked by its Stored, one before it is
	// listed by Pending.
	f.mu.Lock()
	f.following = false
	f.mu.Unlock()
	h.log.Info("hook: this node sends message notifications now")
	return h.resume()
}
