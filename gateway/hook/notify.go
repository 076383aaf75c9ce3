package hook

import (
	"sync"

	"github.com/goccy/go-json"
)

// The event bodies of presence and disconnect notifications. The gateway
// may send other values to Notify; these are the documented shapes.
type (
	// PresenceEvent is a user coming online in a room, or leaving it.
	PresenceEvent struct {
		Node   string `json:"node"`
		Room   string `json:"room"`
		User   string `json:"user"`
		Online bool   `json:"online"`
		TS     int64  `json:"ts"` // Unix milliseconds
	}
	// DisconnectEvent is a connection's end.
	DisconnectEvent struct {
		Node   string `json:"node"`
		User   string `json:"user"`
		Conn   string `json:"conn"`
		Code   int    `json:"code"`             // the close code sent or received (1006: none)
		Reason string `json:"reason,omitempty"` // the close reason, if any
		TS     int64  `json:"ts"`               // Unix milliseconds
	}
)

// Notify queues a presence or disconnect event for its sender and returns
// at once; ev is encoded before Notify returns. Other events, and events
// not enabled, are ignored (message notifications come from Stored).
//
// These notifications are best effort: the queue is in memory, bounded by
// Config.NotifyQueue per event, and when it is full the oldest event is
// dropped (gateway_hook_dropped_total). What is queued when the node stops
// is lost, as is a batch still failing when Close is called.
func (h *Hooks) Notify(e Event, ev any) {
	if !h.Enabled(e) || (e != EventPresence && e != EventDisconnect) {
		return
	}
	b, err := json.Marshal(ev)
	if err != nil {
		h.log.Warn("hook: encoding a notification", "event", e.String(), "err", err)
		h.m.drop(e, 1)
		return
	}
	h.m.drop(e, h.queues[e].push(b))
}

// queueFeed is the in-memory queue of a presence or disconnect sender.
type queueFeed struct {
	wakeC chan struct{}
	mu    sync.Mutex
	q     []json.RawMessage
	max   int
}

func newQueueFeed(size int) *queueFeed {
	return &queueFeed{wakeC: make(chan struct{}, 1), max: size}
}

// push appends ev, dropping the oldest events past max; it returns how
// many were dropped. The oldest go because a receiver of presence would
// rather know the latest state than an old one.
func (q *queueFeed) push(ev json.RawMessage) (dropped int) {
	q.mu.Lock()
	q.q = append(q.q, ev)
	if over := len(q.q) - q.max; over > 0 {
		clear(q.q[:over])
		q.q = q.q[over:]
		dropped = over
	}
	q.mu.Unlock()
	select {
	case q.wakeC <- struct{}{}:
	default:
	}
	return dropped
}

func (q *queueFeed) wake() <-chan struct{} { return q.wakeC }

func (q *queueFeed) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.q)
}

func (q *queueFeed) more() bool          { return q.len() > 0 }
func (q *queueFeed) full(limit int) bool { return q.len() >= limit }

// collect takes the batch out of the queue: while it is retried it is no
// longer subject to drop-oldest, and it is at most BatchMax events.
func (q *queueFeed) collect(limit int) ([]json.RawMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(limit, len(q.q))
	if n == 0 {
		return nil, nil
	}
	batch := make([]json.RawMessage, n)
	copy(batch, q.q)
	clear(q.q[:n])
	q.q = q.q[n:]
	if len(q.q) == 0 {
		q.q = nil // let the backing array go once drained
	}
	return batch, nil
}

func (q *queueFeed) delivered() {}
