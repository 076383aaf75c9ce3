package gateway

import "sync"

// Request order per connection. nbio hands a connection's frames to the
// gateway one at a time, but some requests are answered later, from the
// backend's goroutines (in cluster mode a join, a history or a presence
// list waits for Redis). So that a request never overtakes an earlier one
// (a send right after a join must find the membership), a request that
// waits marks the connection waiting, and the frames that arrive meanwhile
// are held, copied, and handled in order once its reply is written, on
// whichever goroutine writes it. Sends and DMs do not wait: their acks may
// come after later replies (docs/protocol.md, "Ordering and delivery");
// only while the application's publish hook decides about one does it wait
// (hooks.go), so that the connection's messages are stored in its order.
// Join decisions wait as joins do.
// Held bytes stay counted in session.inbound until handled, so the
// inbound cap (frameReader) bounds them.

// order is a session's request-order state.
type order struct {
	mu      sync.Mutex
	running bool         // a goroutine is handling the connection's frames
	waiting bool         // a request waits for its reply; later frames are held
	held    *[]heldFrame // frames that arrived while running or waiting (nil: none yet)
}

// heldFrame is a frame that arrived while the connection was busy.
type heldFrame struct {
	text bool
	data []byte
	at   int64
}

// deliver handles a frame nbio read, or holds it behind a request that
// waits. data is only valid during the call.
func (ss *session) deliver(text bool, data []byte, now int64) {
	o := &ss.order
	o.mu.Lock()
	if o.running || o.waiting {
		if o.held == nil {
			o.held = new([]heldFrame)
		}
		*o.held = append(*o.held, heldFrame{text: text, data: append([]byte(nil), data...), at: now})
		o.mu.Unlock()
		return
	}
	o.running = true
	o.mu.Unlock()
	ss.inbound.Add(-int64(len(data)))
	ss.handleFrame(text, data, now)
	ss.drain()
}

// drain handles the held frames in order until none is left or one waits.
func (ss *session) drain() {
	o := &ss.order
	for {
		o.mu.Lock()
		if o.waiting || o.held == nil || len(*o.held) == 0 {
			if o.held != nil && len(*o.held) == 0 {
				o.held = nil // most connections never hold a frame: keep nothing
			}
			o.running = false
			o.mu.Unlock()
			return
		}
		f := (*o.held)[0]
		(*o.held)[0] = heldFrame{}
		*o.held = (*o.held)[1:]
		o.mu.Unlock()
		ss.inbound.Add(-int64(len(f.data)))
		ss.handleFrame(f.text, f.data, f.at)
	}
}

// wait marks the request being handled as answered later: the frames that
// arrive until resume are held.
func (ss *session) wait() {
	ss.order.mu.Lock()
	ss.order.waiting = true
	ss.order.mu.Unlock()
}

// resume is called once a waiting request's reply is written: the held
// frames are handled, here unless the handler that started the request is
// still running (it drains them when it returns).
func (ss *session) resume() {
	o := &ss.order
	o.mu.Lock()
	o.waiting = false
	if o.running {
		o.mu.Unlock()
		return
	}
	o.running = true
	o.mu.Unlock()
	ss.drain()
}
