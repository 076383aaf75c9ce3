package cluster

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hub"
)

// subscribeWait bounds how long Subscribe waits for a room to go live.
const subscribeWait = 3 * time.Second

// maxHeld bounds the messages of one room held while its history is read;
// beyond it they are dropped, and the gap they leave is filled from the
// history like any other.
const maxHeld = 4096

// Subscribe counts a local member of r; done(nil) once the node's
// subscription to r is live and its position known, so that every message
// stored after the caller then reads r's history reaches the hub. done runs
// at once when r is live already, else on the subscriber goroutine; after
// subscribeWait it gets ErrUnavailable and the count is undone.
func (n *Node) Subscribe(r string, done func(error)) {
	n.mu.Lock()
	st := n.rooms[r]
	if st == nil {
		st = &room{}
		n.rooms[r] = st
	}
	st.refs++
	if st.isReady {
		n.mu.Unlock()
		done(nil)
		return
	}
	st.waiters = append(st.waiters, waiter{done: done, deadline: time.Now().Add(subscribeWait)})
	n.mu.Unlock()
	n.poke()
}

// Unsubscribe drops a local member of r; the last one unsubscribes.
func (n *Node) Unsubscribe(r string) {
	n.mu.Lock()
	n.unref(r, 1)
	n.mu.Unlock()
	n.poke()
}

// unref drops k references on r. n.mu held.
func (n *Node) unref(r string, k int) {
	if st := n.rooms[r]; st != nil {
		st.refs -= k
		if st.refs <= 0 {
			delete(n.rooms, r)
		}
	}
}

func (n *Node) poke() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// markReady makes st live and answers its waiters.
func (n *Node) markReady(st *room) {
	n.mu.Lock()
	st.isReady = true
	ws := st.waiters
	st.waiters = nil
	n.mu.Unlock()
	for _, w := range ws {
		w.done(nil)
	}
}

// expireWaiters fails the Subscribe calls that waited past their deadline.
func (n *Node) expireWaiters(now time.Time) {
	var late []waiter
	n.mu.Lock()
	for r, st := range n.rooms {
		kept := st.waiters[:0]
		for _, w := range st.waiters {
			if now.After(w.deadline) {
				late = append(late, w)
				n.unref(r, 1)
			} else {
				kept = append(kept, w)
			}
		}
		st.waiters = kept
	}
	n.mu.Unlock()
	for _, w := range late {
		w.done(ErrUnavailable)
	}
}

// syncSubscriptions sends one SUBSCRIBE for every room that gained its
// first local member and one UNSUBSCRIBE for every room that lost its last,
// since the previous call: batched, and a room that came and went meanwhile
// costs nothing.
func (n *Node) syncSubscriptions() error {
	var sub, unsub, again []string
	n.mu.Lock()
	for r, st := range n.rooms {
		c := n.channelOf(r)
		switch {
		case n.subscribed[c] == 0:
			sub = append(sub, c)
			n.subscribed[c] = subSent
		case n.subscribed[c] == subConfirmed && !st.isReady:
			// Released and acquired again before it was unsubscribed:
			// live already, no confirmation will come.
			again = append(again, c)
		}
	}
	for c := range n.subscribed {
		if r, _ := n.roomOf(c); n.rooms[r] == nil {
			unsub = append(unsub, c)
			delete(n.subscribed, c)
		}
	}
	n.mu.Unlock()
	for _, c := range again {
		n.live(c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var errs []error
	if len(unsub) > 0 {
		errs = append(errs, n.unsubscribe(ctx, unsub))
	}
	if len(sub) > 0 {
		if failed, err := n.subscribe(ctx, sub); err != nil {
			n.mu.Lock()
			for _, c := range failed {
				delete(n.subscribed, c) // tried again at the next poke
			}
			n.mu.Unlock()
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// subscriber reads the node's subscription: confirmations make rooms live,
// messages are delivered in seq order, and the history reads it asked for
// come back to it here.
func (n *Node) subscriber() {
	defer n.wg.Done()
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-n.kick:
			if err := n.syncSubscriptions(); err != nil {
				n.log.Debug("subscribe", "err", err)
			}
		case <-n.readCh:
			n.readsBack()
		case now := <-retry.C:
			n.expireWaiters(now)
			n.retryStuck()
			n.retryRooms()
		case in := <-n.in:
			switch m := in.v.(type) {
			case *redis.Subscription:
				switch m.Kind {
				case "subscribe", "ssubscribe":
					n.live(m.Channel)
				case "sunsubscribe":
					n.mu.Lock()
					wanted := n.subscribed[m.Channel] != 0
					n.mu.Unlock()
					if wanted { // not ours: Redis moved its slot
						n.moved(in.ps, m.Channel)
					}
				}
			case *redis.Message:
				n.receive(m.Channel, m.Payload)
			}
		}
	}
}

// retryRooms subscribes again where that failed, and reads again where a
// read failed.
func (n *Node) retryRooms() {
	n.mu.Lock()
	pending := false
	var reread []string
	for r, st := range n.rooms {
		if n.subscribed[n.channelOf(r)] != subConfirmed {
			pending = true
		} else if !st.reading && (!st.isReady || len(st.held) > 0) {
			reread = append(reread, r)
		}
	}
	n.mu.Unlock()
	if pending {
		_ = n.syncSubscriptions()
	}
	for _, r := range reread {
		n.live(n.channelOf(r))
	}
}

// live handles a confirmed subscription (a new one, or one go-redis made
// again after reconnecting): it asks where the room's history stands, or
// for what a reconnect made this node miss; the answer (readsBack) makes
// the room ready.
func (n *Node) live(channel string) {
	r, ok := n.roomOf(channel)
	if !ok {
		return
	}
	n.mu.Lock()
	if n.subscribed[channel] == subSent {
		n.subscribed[channel] = subConfirmed
	}
	st := n.rooms[r]
	n.mu.Unlock()
	if st == nil || st.reading {
		return
	}
	if !st.known {
		n.read(r, st, 0, 0, 0)
	} else {
		n.read(r, st, st.last, maxLuaSeq, n.cfg.Size)
	}
}

// maxLuaSeq stands for "no upper bound" in a read.
const maxLuaSeq = 1 << 52

// readDone is a history read of the subscriber's that came back.
type readDone struct {
	room string
	st   *room
	page history.Page
	err  error
}

// read queues a read of r's history for the subscriber: the answer comes
// back through readsBack, on the subscriber goroutine. Meanwhile r's
// messages are held.
func (n *Node) read(r string, st *room, after, before uint64, limit int) {
	st.reading = true
	back := func(p history.Page, err error) {
		n.readsMu.Lock()
		n.reads = append(n.reads, readDone{room: r, st: st, page: p, err: err})
		n.readsMu.Unlock()
		select {
		case n.readCh <- struct{}{}:
		default:
		}
	}
	n.Range(r, after, before, limit, back)
}

// readsBack applies the reads that came back: the room's position, or the
// messages it missed, then the messages held meanwhile.
func (n *Node) readsBack() {
	n.readsMu.Lock()
	done := n.reads
	n.reads = nil
	n.readsMu.Unlock()
	for _, d := range done {
		st := d.st
		n.mu.Lock()
		current := n.rooms[d.room] == st
		n.mu.Unlock()
		st.reading = false
		if !current {
			continue // released meanwhile
		}
		if d.err != nil {
			n.log.Warn("reading a subscribed room's history", "room", d.room, "err", d.err)
			continue // retryRooms reads again
		}
		p := d.page
		switch {
		case !st.known:
			st.last, st.epoch, st.known = p.Latest, p.Epoch, true
		case p.Epoch != st.epoch || !p.Complete:
			// Its history is gone, or moved on past what is held: members
			// are told where the room stands now.
			n.log.Warn("room history lost or out of reach; members resynchronised", "room", d.room,
				"epoch", st.epoch, "now", p.Epoch, "complete", p.Complete)
			st.last, st.epoch = p.Latest, p.Epoch
			n.sink.Lost(d.room, p.Latest, p.Epoch)
		default:
			for _, m := range p.Messages {
				if m.Seq > st.last {
					n.sink.Message(d.room, m.Seq, m.Frame)
					st.last = m.Seq
				}
			}
		}
		n.mu.Lock()
		ready := st.isReady
		n.mu.Unlock()
		if !ready {
			n.markReady(st)
		}
		held := st.held
		st.held = nil
		for _, v := range held {
			n.message(d.room, st, v)
		}
	}
}

// receive handles one published frame: "origin|seq|payload" for a stored
// message, "origin|e<kind>|payload" for an event.
func (n *Node) receive(channel, v string) {
	r, ok := n.roomOf(channel)
	if !ok {
		return
	}
	n.mu.Lock()
	st := n.rooms[r]
	ready := st != nil && st.isReady
	n.mu.Unlock()
	if st == nil {
		return // no local members
	}
	origin, rest, ok1 := strings.Cut(v, "|")
	tag, payload, ok2 := strings.Cut(rest, "|")
	if !ok1 || !ok2 || tag == "" {
		return
	}
	if tag[0] == 'e' {
		if !ready || origin == n.cfg.NodeID {
			return // no one to tell yet, or delivered locally when sent
		}
		if k, err := strconv.Atoi(tag[1:]); err == nil {
			n.sink.Event(r, hub.Kind(k), history.TextFrame(payload))
		}
		return
	}
	n.message(r, st, v)
}

// message delivers a stored message (v is "origin|seq|payload") in seq
// order: held while the room's history is read, skipped when delivered
// already, and a gap before it is filled from the history first.
func (n *Node) message(r string, st *room, v string) {
	if st.reading || !st.known {
		if len(st.held) < maxHeld {
			st.held = append(st.held, v)
		}
		return
	}
	_, rest, _ := strings.Cut(v, "|")
	tag, payload, _ := strings.Cut(rest, "|")
	seq, err := strconv.ParseUint(tag, 10, 64)
	if err != nil || seq <= st.last {
		return
	}
	if seq > st.last+1 {
		st.held = append(st.held, v)
		n.read(r, st, st.last, seq, n.cfg.Size)
		return
	}
	n.sink.Message(r, seq, history.TextFrame(payload))
	st.last = seq
}
