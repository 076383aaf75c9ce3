package backend

import (
	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hub"
)

// Ack is what the sender of a message is told: where it was stored, and
// whether it was a repeat of a key used before (then the original ack).
type Ack struct {
	history.Ack
	Dup bool
}

// Backend is where a node's rooms live. Implementations are safe for
// concurrent use.
type Backend interface {
	// Publish stores the message enc builds at room's next seq and fans it
	// out to the room's members on every node (this one through the hub);
	// done gets the ack, or the original ack with Dup for a repeated key
	// (nothing stored or sent), or an error: history.ErrUnavailable means
	// retry with the same key.
	Publish(room, user, key string, enc history.Encoder, done func(Ack, error))

	// Broadcast sends a frame outside history (typing, read, presence) to
	// room's members on every node, but exclude (on this node). Best effort.
	Broadcast(room string, frame []byte, exclude *hub.Client, kind hub.Kind)

	// Subscribe takes a reference on room for a local member: done(nil)
	// once every message stored from then on reaches the hub. On error
	// (history.ErrUnavailable) no reference is held. Unsubscribe drops one.
	Subscribe(room string, done func(error))
	Unsubscribe(room string)

	// Range reads room's history as history.Store.Range does.
	Range(room string, after, before uint64, limit int, done func(history.Page, error))

	// PresenceJoin records that user's first local connection joined room
	// (PresenceLeave: its last one left). done learns whether the user is
	// online there through another node, and how many presence entries the
	// room has across nodes (after a join, before a leave; one per user per
	// node; 0 from a node alone, whose count is the hub's). It is not
	// called when the backend cannot record it now.
	PresenceJoin(room, user string, done func(elsewhere bool, entries int))
	PresenceLeave(room, user string, done func(elsewhere bool, entries int))

	// PresenceList lists up to max of room's online users, sorted, and
	// how many there are.
	PresenceList(room string, max int, done func(users []string, total int, err error))

	// Ready reports whether the backend can serve now (/readyz).
	Ready() bool

	// Close stops the backend; calls waiting for an answer fail.
	Close() error
}
