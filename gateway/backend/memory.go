package backend

import (
	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hub"
)

// Memory is the backend of a node alone: rooms are the hub's, history is
// an embedded store. With a store in memory every call answers before it
// returns, and a publish stores and fans out under the room's lock, so
// that the room's members see its messages in seq order. With a durable
// store (a history.AsyncStore: Disk), a publish is answered and fanned out
// once the message is on disk, from the store's committer goroutine, in
// seq order; no lock is held while the disk works.
type Memory struct {
	hub   *hub.Hub
	store history.Store
	async history.AsyncStore // store, when it is one
}

// NewMemory returns the backend of a node alone over h and store; Close
// closes store.
func NewMemory(h *hub.Hub, store history.Store) *Memory {
	m := &Memory{hub: h, store: store}
	m.async, _ = store.(history.AsyncStore)
	return m
}

// Publish implements Backend.
func (m *Memory) Publish(room, user, key string, enc history.Encoder, done func(Ack, error)) {
	if m.async != nil {
		m.async.AppendAsync(room, user, key, enc, func(msg history.Message, a history.Ack, dup bool, err error) {
			if err == nil && !dup {
				m.hub.Publish(room, func() ([]byte, uint64, bool) { return msg.Frame, msg.Seq, true })
			}
			done(Ack{Ack: a, Dup: dup}, err)
		})
		return
	}
	var ack Ack
	var err error
	m.hub.Publish(room, func() ([]byte, uint64, bool) {
		var msg history.Message
		msg, ack.Ack, ack.Dup, err = m.store.Append(room, user, key, enc)
		if err != nil || ack.Dup {
			return nil, 0, false
		}
		return msg.Frame, msg.Seq, true
	})
	done(ack, err)
}

// Broadcast implements Backend.
func (m *Memory) Broadcast(room string, frame []byte, exclude *hub.Client, kind hub.Kind) {
	m.hub.Broadcast(room, frame, exclude, kind)
}

// Subscribe implements Backend: every message of a node alone goes through
// its hub.
func (m *Memory) Subscribe(_ string, done func(error)) { done(nil) }

// Unsubscribe implements Backend.
func (m *Memory) Unsubscribe(string) {}

// Range implements Backend.
func (m *Memory) Range(room string, after, before uint64, limit int, done func(history.Page, error)) {
	done(m.store.Range(room, after, before, limit))
}

// PresenceJoin implements Backend: no other node, and no count beyond the
// hub's, which the caller has.
func (m *Memory) PresenceJoin(_, _ string, done func(bool, int)) { done(false, 0) }

// PresenceLeave implements Backend.
func (m *Memory) PresenceLeave(_, _ string, done func(bool, int)) { done(false, 0) }

// PresenceList implements Backend.
func (m *Memory) PresenceList(room string, max int, done func([]string, int, error)) {
	users, total := m.hub.Presence(room, max)
	done(users, total, nil)
}

// Ready implements Backend.
func (m *Memory) Ready() bool { return true }

// Close implements Backend.
func (m *Memory) Close() error { return m.store.Close() }

// Memory is a Backend.
var _ Backend = (*Memory)(nil)
