package hook

import (
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/goccy/go-json"
)

// feed is where a sender takes its events: the presence or disconnect
// queue (queueFeed) or stored history (messageFeed). Only the sender's
// goroutine calls collect and delivered, so a feed needs no lock for the
// batch in flight.
type feed interface {
	// wake is signaled when events may have arrived.
	wake() <-chan struct{}
	// more reports whether events may be waiting, full whether at least
	// limit probably are (a batch need not wait for more).
	more() bool
	full(limit int) bool
	// collect takes the next batch, up to limit encoded events in order;
	// none: nil. An error with no events means the feed could not be read
	// (the sender backs off).
	collect(limit int) ([]json.RawMessage, error)
	// delivered is told that the batch of the last collect was answered
	// 2xx. Until then collect is not called again: a failed batch is
	// retried as it was.
	delivered()
}

// sender is the one goroutine that delivers one event's notifications, one
// batch at a time, so that they arrive in order.
type sender struct {
	e        Event
	f        feed
	inflight atomic.Int64 // events of the batch being sent or retried
	failing  bool         // last attempt failed (to log only changes of state)
	retry    backoff
}

func (h *Hooks) addSender(e Event, f feed) {
	h.senders = append(h.senders, &sender{e: e, f: f, retry: backoff{min: h.cfg.RetryMin, max: h.cfg.RetryMax}})
}

// run is a sender's goroutine: wait for events, let a batch fill for up to
// BatchWait, deliver it (retrying until it is answered 2xx), repeat.
func (h *Hooks) run(s *sender) {
	defer h.wg.Done()
	var rescan <-chan time.Time
	if s.e == EventMessage {
		if !h.resume() {
			return
		}
		if h.cfg.Rescan > 0 {
			tk := time.NewTicker(h.cfg.Rescan)
			defer tk.Stop()
			rescan = tk.C
		}
	}
	for {
		if s.e == EventMessage && !h.lead() {
			return
		}
		select {
		case <-rescan: // checked between batches too: a busy feed must not starve it
			h.rescan()
		default:
		}
		if !s.f.more() {
			select {
			case <-s.f.wake():
			case <-rescan:
				h.rescan()
				continue
			case <-h.stop:
				return
			}
		}
		if h.window(s) {
			h.flush(s)
			return
		}
		if !h.deliver(s) {
			return
		}
	}
}

// window waits until a batch is full or BatchWait has passed. It reports
// whether Close was called meanwhile.
func (h *Hooks) window(s *sender) (stopped bool) {
	if s.f.full(h.cfg.BatchMax) {
		select {
		case <-h.stop:
			return true
		default:
			return false
		}
	}
	t := time.NewTimer(h.cfg.BatchWait)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return false
		case <-s.f.wake():
			if s.f.full(h.cfg.BatchMax) {
				return false
			}
		case <-h.stop:
			return true
		}
	}
}

// deliver sends the next batch, retrying with backoff until it is
// answered 2xx. It returns false when Close stopped it (a batch still
// failing is then abandoned: messages stay behind the cursor, presence and
// disconnect events are lost).
func (h *Hooks) deliver(s *sender) bool {
	if h.standDown(s) {
		return true
	}
	batch, err := s.f.collect(h.cfg.BatchMax)
	if err != nil {
		h.log.Warn("hook: reading notifications", "event", s.e.String(), "err", err)
		return h.pause(s.retry.next())
	}
	if len(batch) == 0 {
		// Nothing to send, but a cursor may still move past messages that
		// were skipped (gone, or not encodable).
		s.f.delivered()
		return true
	}
	body := encodeBatch(batch)
	s.inflight.Store(int64(len(batch)))
	defer s.inflight.Store(0)
	for {
		// Asked before every attempt: a batch retried while the lease
		// passed to another node is that node's to send now.
		if h.standDown(s) {
			return true
		}
		if h.send(s, body) {
			break
		}
		if !h.pause(s.retry.next()) {
			return false
		}
	}
	s.retry.reset()
	s.f.delivered()
	return true
}

// standDown reports whether s is the message sender of a node that is not
// the leader any more (see Leader), having emptied its feed: run's next
// lead waits to lead again.
func (h *Hooks) standDown(s *sender) bool {
	if s.e != EventMessage || h.msgs.leading() {
		return false
	}
	h.msgs.follow()
	return true
}

// flush delivers what the feed holds once Close was called: one attempt
// per batch, until the feed is empty, an attempt fails or FlushTimeout
// passes (nctx).
func (h *Hooks) flush(s *sender) {
	for h.nctx.Err() == nil && s.f.more() {
		if h.standDown(s) {
			return
		}
		batch, err := s.f.collect(h.cfg.BatchMax)
		if err != nil {
			return
		}
		if len(batch) == 0 {
			s.f.delivered()
			return
		}
		s.inflight.Store(int64(len(batch)))
		ok := h.send(s, encodeBatch(batch))
		s.inflight.Store(0)
		if !ok {
			return
		}
		s.f.delivered()
	}
}

// send makes one attempt at a batch. Any 2xx status is success, even if
// the answer (which is ignored) could not be read: the application has
// taken the batch.
func (h *Hooks) send(s *sender, body []byte) bool {
	status, _, err := h.post(h.nctx, s.e, body)
	if status/100 == 2 {
		h.m.call(s.e, outcomeOK)
		if s.failing {
			s.failing = false
			h.log.Info("hook: notifications delivered again", "event", s.e.String())
		}
		return true
	}
	if err == nil {
		err = errStatus(s.e, status)
	}
	h.m.call(s.e, outcomeError)
	if !s.failing && !errors.Is(err, ErrClosed) {
		s.failing = true
		h.log.Warn("hook: notifications failing, retrying with backoff", "event", s.e.String(), "err", err)
	}
	return false
}

// pause waits d, or less if Close is called; it reports whether it waited
// d.
func (h *Hooks) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-h.stop:
		return false
	}
}

// encodeBatch is the body of a notification: {"events":[...]}.
func encodeBatch(events []json.RawMessage) []byte {
	n := len(`{"events":[]}`) + len(events)
	for _, e := range events {
		n += len(e)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"events":[`...)
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, "]}"...)
}

// backoff is the wait between attempts: min, doubled per failure up to max.
type backoff struct{ min, max, cur time.Duration }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	// Half fixed, half random: nodes that lost the endpoint together do
	// not all come back at the same instant.
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

func (b *backoff) reset() { b.cur = 0 }

// backlog is the gateway_hook_queue gauge: events held by the notifiers.
func (h *Hooks) backlog() float64 {
	var n int64
	for _, s := range h.senders {
		n += s.inflight.Load()
	}
	for _, q := range h.queues {
		if q != nil {
			n += int64(q.len())
		}
	}
	return float64(n)
}
