package hub

import "time"

// Coalescing from load, within a latency budget.
//
// A write to a socket costs about the same for one frame or ten (on
// loopback about 7 us, nearly all of it the kernel's), so deliveries per
// CPU-second come from frames sharing writes: several messages to a room
// leaving in one write per member. They only share a write if the pass
// that writes them waits for the later ones. Two rules keep that waiting
// where it pays, and bound it:
//
//   - Only a busy worker holds messages: one that spent at least busyFrom
//     of the recent past writing, in passes costing at least holdFrom. On a
//     quiet node, in small rooms or at a light load every message goes out
//     at once.
//   - A held pass starts no later than Config.Budget after its oldest
//     message was queued, less what the last pass cost: the oldest message
//     is written within about the budget whatever the load. The wait
//     shrinks as passes get costlier, so it cannot feed on itself (a fixed
//     linger after each pass made costlier passes, which made longer
//     lingers, up to its cap: 100 rooms x 100 at 400 msg/s waited 53 ms
//     at p50 for nothing).
//
// Rooms fanned out by several workers at once (Config.SplitRoomsAbove) cut
// a pass's cost, which leaves more of the budget for coalescing.
const (
	holdFrom   = time.Millisecond       // passes cheaper than this never hold
	busyFrom   = 0.25                   // share of the load window spent writing
	loadWindow = 500 * time.Millisecond // how far back "busy" looks
)

// load is what a worker knows of its recent passes. Owned by the worker
// goroutine.
type load struct {
	busy float64       // share of loadWindow spent in passes, as of last
	last int64         // when the last pass ended, Unix ns
	cost time.Duration // what the last pass took
}

// passed records a pass. busy decays linearly over loadWindow: passes of
// cost C every T keep it at C/T.
func (l *load) passed(start, end time.Time) {
	l.cost = end.Sub(start)
	l.busy = l.busyAt(end.UnixNano()) + float64(l.cost)/float64(loadWindow)
	l.last = end.UnixNano()
}

// busyAt is busy decayed to now.
func (l *load) busyAt(now int64) float64 {
	keep := 1 - float64(now-l.last)/float64(loadWindow)
	if l.last == 0 || keep <= 0 {
		return 0
	}
	return l.busy * keep
}

// holdFor is how long a pass whose oldest message was queued at oldest
// waits, at now, under budget: 0 unless the worker is busy with costly
// passes.
func (l *load) holdFor(oldest, now int64, budget time.Duration) time.Duration {
	if budget <= 0 || l.cost < holdFrom || l.busyAt(now) < busyFrom {
		return 0
	}
	return max(0, time.Duration(oldest-now)+budget-l.cost)
}

// hold waits before a pass while that lets more messages share its
// writes (see holdFor).
func (w *worker) hold() {
	w.mu.Lock()
	if len(w.queue) == 0 || w.closed {
		w.mu.Unlock()
		return
	}
	oldest := w.queue[0].queued
	for i := range w.queue { // a split room's forwarded share may be older
		oldest = min(oldest, w.queue[i].queued)
	}
	w.mu.Unlock()
	if d := w.load.holdFor(oldest, time.Now().UnixNano(), w.hub.cfg.Budget); d > 0 {
		time.Sleep(d)
	}
}
