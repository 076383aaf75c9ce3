package hub

import (
	"slices"
	"sync"
	"time"
)

// delivery is one frame queued for a room's members. seq is the message's
// seq, or 0 for frames outside history (typing, read, presence), which are
// not filtered by a member's joined point.
type delivery struct {
	room    *Room
	frame   []byte
	seq     uint64
	exclude *Client
	// share is 0 for a whole room, or k+1 when only the clients of share k
	// (registry shard mod worker count) are to be written: a split room's
	// worker hands each other worker its share (see deliverRun).
	share uint16
	kind  Kind
	// queued is when the delivery was queued (Unix ns): the fan-out
	// budget is counted from it (budget.go), and the Observer's latency.
	queued int64
}

// worker fans queued deliveries out. Each room is served by one worker (by
// hash), so a room's frames leave in the order they were queued.
//
// The worker takes everything queued at once. Consecutive deliveries to the
// same room form a run, and each member gets the frames of a run in one
// write: under load a burst costs one syscall per member instead of one per
// message; when idle, a lone message is written as soon as it is queued.
type worker struct {
	hub *Hub
	idx int // index in hub.workers

	mu     sync.Mutex
	queue  []delivery
	wake   chan struct{}
	closed bool
	done   chan struct{}

	// Owned by the worker goroutine; reused so that nothing on the
	// per-recipient path allocates.
	batch   []delivery
	order   map[*Room]int // first appearance of each room in the batch
	members []*Member
	buf     []byte
	// passAt is when the current pass began (Unix ns), for the
	// Observer's queue wait and write offsets.
	passAt int64
	load   load // how busy the worker is and what its passes cost (budget.go)
}

func newWorker(h *Hub, idx int) *worker {
	return &worker{hub: h, idx: idx, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// enqueue queues d; the room's lock is held by the caller.
func (w *worker) enqueue(d delivery) {
	if d.queued == 0 { // a split room's forwarded share keeps its first time
		d.queued = time.Now().UnixNano()
	}
	w.hub.inflight.Add(1)
	w.mu.Lock()
	w.queue = append(w.queue, d)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) stop() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
}

func (w *worker) run() {
	defer close(w.done)
	for {
		<-w.wake
		for {
			w.hold()
			w.mu.Lock()
			w.batch, w.queue = w.queue, w.batch[:0]
			closed := w.closed
			w.mu.Unlock()
			if len(w.batch) == 0 {
				if closed {
					return
				}
				break
			}
			start := time.Now()
			w.passAt = start.UnixNano()
			if o := w.hub.cfg.Observer; o != nil {
				o.FanoutPass(len(w.batch))
			}
			w.deliver(w.batch)
			w.hub.inflight.Add(-int64(len(w.batch)))
			clear(w.batch) // drop frame and room references
			w.load.passed(start, time.Now())
		}
	}
}

// writeSamples is how many members' write offsets a run reports to the
// Observer (plus the last member's): enough for a distribution, few enough
// that a 10,000-member pass reads the clock 17 times, not 10,000.
const writeSamples = 16

// maxWriteBytes bounds one coalesced write, which bounds how far a client's
// backlog can overshoot its cap (see Client.sendLocked).
const maxWriteBytes = 256 << 10

// flush writes the n frames gathered for c: the single frame one, or the
// coalesced buffer, and returns the number of writes made. c.mu is held.
func (w *worker) flush(c *Client, one []byte, n int) int64 {
	switch {
	case n == 1:
		c.sendLocked(one)
	case n > 1:
		c.sendLocked(w.buf)
	default:
		return 0
	}
	return 1
}

// maxKeptBuf bounds the coalescing buffer a worker keeps between batches.
const maxKeptBuf = 1 << 20

// deliver fans out one batch, run by run, and returns the frames delivered
// and the writes it took.
func (w *worker) deliver(batch []delivery) (delivered, writes int64) {
	// Group the batch by room, keeping each room's frames in their order
	// (the order between rooms does not matter): interleaved publishes to
	// many rooms then still leave as one write per member and pass.
	if len(batch) > 1 {
		if w.order == nil {
			w.order = make(map[*Room]int)
		}
		for i := range batch {
			if _, ok := w.order[batch[i].room]; !ok {
				w.order[batch[i].room] = len(w.order)
			}
		}
		if len(w.order) > 1 {
			slices.SortStableFunc(batch, func(a, b delivery) int { return w.order[a.room] - w.order[b.room] })
		}
		clear(w.order)
	}
	for start := 0; start < len(batch); {
		end := start + 1
		for end < len(batch) && batch[end].room == batch[start].room {
			end++
		}
		d, n := w.deliverRun(batch[start:end])
		delivered += d
		writes += n
		start = end
	}
	if cap(w.buf) > maxKeptBuf {
		w.buf = nil
	}
	return delivered, writes
}

// deliverRun writes a run of one room's frames to each member in one write.
// Members are copied out under the room lock and written to without it, so
// a slow syscall never holds up joins; the membership's active flag and
// joined point are checked under the client's lock, which also orders these
// writes after the member's joined frame.
func (w *worker) deliverRun(run []delivery) (delivered, writes int64) {
	r := run[0].room
	h := w.hub
	share := run[0].share
	r.mu.Lock()
	if share == 0 && !r.split && h.cfg.SplitRoomsAbove > 0 && len(h.workers) > 1 && len(r.members) > h.cfg.SplitRoomsAbove {
		// Sticky: if a room went back to whole-room passes, a client's
		// next frame could be written by this worker before another
		// worker has written the previous one.
		r.split = true
	}
	split := share == 0 && r.split
	w.members = append(w.members[:0], r.members...)
	r.mu.Unlock()
	if split {
		// Every client's frames of this room are written by the one
		// worker owning its share, in the order this worker forwards
		// runs: per-member order holds.
		for _, o := range h.workers {
			if o == w {
				continue
			}
			for _, d := range run {
				d.share = uint16(o.idx + 1)
				o.enqueue(d)
			}
		}
		share = uint16(w.idx + 1)
	}
	nw := len(h.workers)
	o := h.cfg.Observer
	stride := 0 // write offsets are sampled every stride-th member written
	if o != nil {
		for i := range run {
			o.FanoutQueueWait(time.Duration(w.passAt - run[i].queued))
		}
		mine := len(w.members)
		if share != 0 {
			mine /= nw
		}
		stride = max(1, mine/writeSamples)
	}
	written := 0

	var kinds [numKinds]int64 // frames delivered by kind
	var bytes int64
	for _, m := range w.members {
		c := m.client
		if share != 0 && int(c.regShard)%nw != int(share-1) {
			continue
		}
		c.mu.Lock()
		if !m.active || c.closing || c.waiting {
			c.mu.Unlock()
			continue
		}
		if m.pending { // sent nothing yet: note the seqs it missed (see JoinBegin)
			for i := range run {
				m.from = max(m.from, run[i].seq)
			}
			c.mu.Unlock()
			continue
		}
		var one []byte
		n := 0
		w.buf = w.buf[:0]
		for i := range run {
			d := &run[i]
			if d.exclude == c || (d.seq != 0 && d.seq <= m.from) {
				continue
			}
			if n > 0 && max(len(w.buf), len(one))+len(d.frame) > maxWriteBytes {
				delivered += int64(n)
				writes += w.flush(c, one, n)
				bytes += int64(max(len(w.buf), len(one)))
				w.buf, n = w.buf[:0], 0
			}
			kinds[d.kind]++
			if n == 0 {
				one = d.frame
			} else {
				if n == 1 {
					w.buf = append(w.buf, one...)
				}
				w.buf = append(w.buf, d.frame...)
			}
			n++
		}
		writes += w.flush(c, one, n)
		c.mu.Unlock()
		if n > 0 && stride > 0 {
			if written++; written%stride == 0 {
				o.FanoutWrite(time.Duration(time.Now().UnixNano() - w.passAt))
			}
		}
		delivered += int64(n)
		switch {
		case n == 1:
			bytes += int64(len(one))
		case n > 1:
			bytes += int64(len(w.buf))
		}
	}
	clear(w.members)
	h.stats.delivered.Add(delivered)
	h.stats.batches.Add(writes)
	h.stats.bytesOut.Add(bytes)
	for k, n := range kinds {
		if n > 0 {
			h.stats.byKind[k].Add(n)
		}
	}
	if o != nil {
		now := time.Now().UnixNano()
		if written%stride != 0 { // the last member written, unless just sampled
			o.FanoutWrite(time.Duration(now - w.passAt))
		}
		for i := range run {
			o.FanoutLatency(time.Duration(now - run[i].queued))
		}
	}
	return delivered, writes
}
