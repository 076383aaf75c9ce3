package hook

import (
	"fmt"
	"sync"

	"github.com/goccy/go-json"
)

// Message is one stored message as a message notification carries it:
// {"room","seq","ts","from","to"?,"text"?,"data"?}. The field names are
// those of the protocol's "message" frame, so DecodeMessage reads a stored
// frame's payload directly.
type Message struct {
	Room string          `json:"room"`
	Seq  uint64          `json:"seq"`
	TS   int64           `json:"ts"` // Unix milliseconds
	From string          `json:"from"`
	To   string          `json:"to,omitempty"` // direct messages: the recipient
	Text *string         `json:"text,omitempty"`
	Data json.RawMessage `json:"data,omitempty"` // valid JSON, verbatim
}

// Source is the stored history message notifications are read from, and
// where their per-room cursor is kept. The gateway implements it over its
// history store (see HistoryRange). It is called from the message
// sender's goroutine only, one call at a time, and may block on I/O.
type Source interface {
	// Range returns up to limit messages of room with seq > after, oldest
	// first, in seq order. Fewer than limit means none more are stored
	// now. A first seq past after+1 means the ones between are gone
	// (history dropped them before they were notified); they are counted
	// as dropped and skipped.
	Range(room string, after uint64, limit int) ([]Message, error)
	// Cursor returns the last seq notified for room (0: none yet).
	// SetCursor persists it, after the batch holding seq was answered 2xx.
	// The cursor must name a seq of the room's current history: if the
	// history was lost and seq restarted (a new epoch), Cursor must return
	// 0, or the new messages up to the old cursor are never notified.
	Cursor(room string) (uint64, error)
	SetCursor(room string, seq uint64) error
	// Pending lists the rooms whose latest seq is past their cursor. It is
	// called when the sender starts, to resume after a restart, every
	// Config.Rescan, and (a Source that is a Leader) when this node
	// becomes the leader; listing a room that is not behind only costs a
	// Range.
	Pending() ([]string, error)
}

// Stored tells the message notifier that room has a message at seq. Call
// it once the message is stored, when Range would return it; it only marks
// the room (a map and a lock of its own, no I/O), so it may be called under
// the gateway's locks. Calls may be missed or repeated: the notifier reads
// from the cursor, so a missed call delays a room's messages until its next
// Stored (or the next start), and loses none.
func (h *Hooks) Stored(room string, seq uint64) {
	if h == nil || h.msgs == nil {
		return
	}
	h.msgs.stored(room, seq)
}

// roomState is what the message feed knows of a room that is behind, or
// in the batch in flight. A room caught up is forgotten, and its cursor
// read again from the Source the next time it is behind.
type roomState struct {
	cursor  uint64 // last seq notified, once loaded
	loaded  bool
	latest  uint64 // highest seq Stored reported (0: none)
	sent    uint64 // last seq of the room in the batch in flight (0: none)
	stored  int    // Stored calls since the room was last read: part of feed.pending
	backlog bool   // more may be stored than stored says: resumed, or a read filled its page
	dirty   bool   // queued to be read
}

type roomSeq struct {
	room string
	seq  uint64
	more bool // the read filled its page: the room was marked again
}

// messageFeed reads message notifications from the Source: the rooms
// Stored marked, oldest marked first, each from its cursor.
type messageFeed struct {
	src    Source
	leader Leader // src, when it is shared by several nodes; nil: always leading
	h      *Hooks
	wakeC  chan struct{}

	mu       sync.Mutex
	rooms    map[string]*roomState
	dirty    []string // rooms to read, in the order they were marked
	pending  int      // sum of rooms' stored: messages known to wait
	backlogs int      // dirty rooms with backlog set
	// following: another node sends the messages (see Leader); Stored
	// is ignored and the feed kept empty.
	following bool

	acks []roomSeq // the batch in flight (sender goroutine only)
}

func newMessageFeed(src Source, h *Hooks) *messageFeed {
	l, _ := src.(Leader)
	return &messageFeed{src: src, leader: l, h: h, wakeC: make(chan struct{}, 1), rooms: map[string]*roomState{}}
}

func (f *messageFeed) stored(room string, seq uint64) {
	f.mu.Lock()
	if f.following {
		f.mu.Unlock()
		return
	}
	st := f.state(room)
	st.latest = max(st.latest, seq)
	st.stored++
	f.pending++
	f.mark(room, st, false)
	f.mu.Unlock()
	select {
	case f.wakeC <- struct{}{}:
	default:
	}
}

// state returns room's state, made if need be. f.mu is held.
func (f *messageFeed) state(room string) *roomState {
	st := f.rooms[room]
	if st == nil {
		st = &roomState{}
		f.rooms[room] = st
	}
	return st
}

// mark queues room to be read, noting that it may hold more than its
// Stored calls say. f.mu is held.
func (f *messageFeed) mark(room string, st *roomState, backlog bool) {
	if backlog && !st.backlog {
		st.backlog = true
		f.backlogs++
	}
	if !st.dirty {
		st.dirty = true
		f.dirty = append(f.dirty, room)
	}
}

// resume marks the rooms left behind by the last run. It retries until the
// Source answers, and reports false if Close came first.
func (h *Hooks) resume() bool {
	b := backoff{min: h.cfg.RetryMin, max: h.cfg.RetryMax}
	for !h.rescan() {
		if !h.pause(b.next()) {
			return false
		}
	}
	return true
}

// rescan marks the rooms Source.Pending lists; it reports whether the
// Source answered. A node that is not the leader does not ask: the rooms
// are the leader's to send, and listing them may cost the shared store a
// scan.
func (h *Hooks) rescan() bool {
	f := h.msgs
	if !f.leading() {
		return true
	}
	rooms, err := f.src.Pending()
	if err != nil {
		h.log.Warn("hook: listing rooms with messages to notify", "err", err)
		return false
	}
	f.mu.Lock()
	for _, r := range rooms {
		f.mark(r, f.state(r), true)
	}
	f.mu.Unlock()
	return true
}

func (f *messageFeed) wake() <-chan struct{} { return f.wakeC }

func (f *messageFeed) more() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dirty) > 0
}

func (f *messageFeed) full(limit int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending >= limit || f.backlogs > 0
}

// collect reads the marked rooms in turn, each from its cursor, until the
// batch holds limit events or every room marked when it began was read. A
// room whose read filled the batch is marked again, behind the others, so
// that one busy room does not hold back the rest.
func (f *messageFeed) collect(limit int) ([]json.RawMessage, error) {
	f.acks = f.acks[:0]
	var events []json.RawMessage
	f.mu.Lock()
	n := len(f.dirty)
	f.mu.Unlock()
	for ; n > 0 && len(events) < limit; n-- {
		f.mu.Lock()
		room := f.dirty[0]
		f.dirty[0] = ""
		f.dirty = f.dirty[1:]
		if len(f.dirty) == 0 {
			f.dirty = nil
		}
		st := f.rooms[room]
		st.dirty = false
		if st.backlog {
			st.backlog = false
			f.backlogs--
		}
		f.pending -= st.stored
		st.stored = 0
		from, loaded := max(st.cursor, st.sent), st.loaded
		f.mu.Unlock()

		if !loaded {
			c, err := f.src.Cursor(room)
			if err != nil {
				f.requeue(room)
				if len(events) > 0 {
					break // send what was read; the room is read again next time
				}
				return nil, fmt.Errorf("cursor of %q: %w", room, err)
			}
			f.mu.Lock()
			st.cursor, st.loaded = c, true
			f.mu.Unlock()
			from = c
		}
		want := limit - len(events)
		msgs, err := f.src.Range(room, from, want)
		if err != nil {
			f.requeue(room)
			if len(events) > 0 {
				break
			}
			return nil, fmt.Errorf("reading %q after %d: %w", room, from, err)
		}
		last, lost := from, uint64(0)
		for i := range msgs {
			m := &msgs[i]
			if m.Seq <= last {
				continue // not after the cursor: a Source's mistake, never sent twice for it
			}
			lost += m.Seq - last - 1
			if m.Room == "" {
				m.Room = room
			}
			b, err := json.Marshal(m)
			if err != nil {
				lost++ // not encodable (data not JSON): skipped, or the room would stall on it
				last = m.Seq
				continue
			}
			events = append(events, b)
			last = m.Seq
		}
		full := len(msgs) >= want
		if last > from {
			f.acks = append(f.acks, roomSeq{room, last, full})
			f.mu.Lock()
			st.sent = last
			f.mu.Unlock()
		}
		if full {
			f.requeue(room)
		} else {
			lost += f.caughtUp(room, st, last)
		}
		f.h.lostMessages(room, lost)
	}
	return events, nil
}

// requeue marks room to be read again, behind the rooms already marked.
func (f *messageFeed) requeue(room string) {
	f.mu.Lock()
	f.mark(room, f.rooms[room], true)
	f.mu.Unlock()
}

// caughtUp is told that room has nothing stored past last. A room neither
// marked again nor in the batch is forgotten (a room in the batch is, once
// delivered); the seqs Stored reported that the Source did not return are
// returned, as lost: Stored is called once Range would return the seq, and
// a Stored since the room was taken would have marked it again.
func (f *messageFeed) caughtUp(room string, st *roomState, last uint64) (lost uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st.dirty || st.sent != 0 {
		return 0
	}
	return f.forget(room, st, last)
}

// forget drops the state of a room caught up at last. f.mu is held.
func (f *messageFeed) forget(room string, st *roomState, last uint64) (lost uint64) {
	if st.latest > last {
		lost = st.latest - last
	}
	delete(f.rooms, room)
	return lost
}

// delivered advances the cursor of every room in the batch, now that it
// was answered 2xx. A cursor that cannot be persisted is kept in memory:
// only a restart before the next persisted cursor repeats those events.
func (f *messageFeed) delivered() {
	for _, a := range f.acks {
		if err := f.src.SetCursor(a.room, a.seq); err != nil {
			f.h.log.Warn("hook: saving a message cursor", "room", a.room, "seq", a.seq, "err", err)
		}
		f.mu.Lock()
		st := f.rooms[a.room]
		st.cursor, st.loaded, st.sent = a.seq, true, 0
		var lost uint64
		if !st.dirty && !a.more {
			lost = f.forget(a.room, st, a.seq)
		}
		f.mu.Unlock()
		f.h.lostMessages(a.room, lost)
	}
	f.acks = f.acks[:0]
}

// lostMessages counts messages of room gone before they were notified.
func (h *Hooks) lostMessages(room string, n uint64) {
	if n == 0 {
		return
	}
	h.m.drop(EventMessage, int(n))
	h.log.Warn("hook: messages dropped from history before they were notified", "room", room, "count", n)
}

// cursorLag is the gateway_hook_cursor_lag gauge: over the rooms the feed
// tracks, the latest seq Stored reported past the cursor, or for a room
// whose cursor was not read yet the Stored calls since. Rooms resumed at
// start count only once read (their latest is not known before).
func (h *Hooks) cursorLag() float64 {
	f := h.msgs
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var n uint64
	for _, st := range f.rooms {
		switch {
		case !st.loaded:
			n += uint64(st.stored)
		case st.latest > st.cursor:
			n += st.latest - st.cursor
		}
	}
	return float64(n)
}
