package hub

import (
	"sync/atomic"
	"time"
)

// Kind is what a fanned-out frame is, for counting deliveries by type.
type Kind uint8

// Kinds of fanned-out frames.
const (
	KindMessage  Kind = iota // a room message (history, seq)
	KindTyping               // typing event
	KindRead                 // read receipt
	KindPresence             // presence online/offline event
	numKinds
)

// String is the kind's name as the protocol spells the frame type.
func (k Kind) String() string {
	switch k {
	case KindMessage:
		return "message"
	case KindTyping:
		return "typing"
	case KindRead:
		return "read"
	case KindPresence:
		return "presence"
	}
	return "unknown"
}

// Kinds lists every Kind, for metrics that export one series each.
func Kinds() []Kind { return []Kind{KindMessage, KindTyping, KindRead, KindPresence} }

// Observer is told about fan-out as it happens, for histograms. It is
// called once per worker pass and once per message, never per recipient,
// from the fan-out workers: implementations must be safe for concurrent
// use and must not block or allocate.
type Observer interface {
	// FanoutPass: a worker took messages queued deliveries in one pass.
	FanoutPass(messages int)
	// FanoutLatency: a message's frames were written to every member a
	// worker serves d after it was queued (a split room reports once per
	// worker share).
	FanoutLatency(d time.Duration)
	// FanoutQueueWait: a message waited d from being queued until the
	// pass that writes it began (once per message and worker share).
	FanoutQueueWait(d time.Duration)
	// FanoutWrite: a member's write came d after its pass began. Sampled,
	// not per recipient: up to writeSamples evenly spaced members of each
	// run and the last one, so the distribution is that of "how far into
	// the pass is a member written" without a clock read per recipient.
	FanoutWrite(d time.Duration)
}

// stats are the hub's counters. They are added to once per fan-out run
// (one room's frames of one pass), not per recipient.
type stats struct {
	conns         atomic.Int64
	rooms         atomic.Int64
	members       atomic.Int64
	slowConsumers atomic.Int64
	delivered     atomic.Int64
	batches       atomic.Int64
	bytesOut      atomic.Int64
	byKind        [numKinds]atomic.Int64
}

// Stats is a snapshot of the hub's counters.
type Stats struct {
	Connections   int64
	Rooms         int64
	Memberships   int64 // connections x rooms joined, inboxes included
	SlowConsumers int64
	// Deliveries counts frames handed to members by fan-out; Writes counts
	// the socket writes that carried them (fewer under load: batching).
	Deliveries, Writes int64
	BytesOut           int64 // fan-out bytes handed to sockets
	ByKind             [numKinds]int64
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	s := Stats{
		Connections: h.stats.conns.Load(), Rooms: h.stats.rooms.Load(),
		Memberships: h.stats.members.Load(), SlowConsumers: h.stats.slowConsumers.Load(),
		Deliveries: h.stats.delivered.Load(), Writes: h.stats.batches.Load(),
		BytesOut: h.stats.bytesOut.Load(),
	}
	for k := range s.ByKind {
		s.ByKind[k] = h.stats.byKind[k].Load()
	}
	return s
}
