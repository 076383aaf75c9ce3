package cluster

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/gateway/backend"
	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hub"
)

// job is one queued publish: a message (prep, done) or an event.
type job struct {
	room  string
	prep  history.Prepared
	done  func(backend.Ack, error)
	event string // "origin|e<kind>|payload" for events
	// Other commands (presence): run queues it, then gets its reply.
	run  func(context.Context, redis.Pipeliner) *redis.Cmd
	then func(*redis.Cmd)
}

func (j job) fail(err error) {
	switch {
	case j.done != nil:
		j.done(backend.Ack{}, err)
	case j.then != nil:
		c := redis.NewCmd(context.Background())
		c.SetErr(err)
		j.then(c)
	}
}

// Publish queues a message of room for storing and publishing; done is
// called from the publisher goroutine with the ack (or the original ack
// with Dup for a repeated key, or an error). A full queue or an
// unreachable Redis fails at once with ErrUnavailable: nothing is stored.
// The node's own members get the message from the room's subscription,
// like every other node's, in seq order.
func (n *Node) Publish(room, user, key string, enc history.Encoder, done func(backend.Ack, error)) {
	if !n.Ready() {
		done(backend.Ack{}, ErrUnavailable)
		return
	}
	p, err := n.store.Prepare(room, user, key, enc)
	if err != nil {
		done(backend.Ack{}, err)
		return
	}
	if !n.queue(job{room: room, prep: p, done: done}) {
		done(backend.Ack{}, ErrUnavailable)
	}
}

// Range reads room's history (history.Store.Range) through the publisher's
// queue: after the node's own publishes queued before it. done runs on the
// publisher goroutine, or at once with ErrUnavailable when Redis is down or
// the queue is full.
func (n *Node) Range(room string, after, before uint64, limit int, done func(history.Page, error)) {
	ok := n.queue(job{room: room, run: func(ctx context.Context, p redis.Pipeliner) *redis.Cmd {
		return n.store.QueueRange(ctx, p, room, after, before, limit)
	}, then: func(c *redis.Cmd) { done(history.ParseRange(c)) }})
	if !ok {
		done(history.Page{}, ErrUnavailable)
	}
}

// Event publishes a frame outside history (typing, read, presence) to the
// other nodes' members of room; this node delivers its own. Best effort:
// dropped when the queue is full or Redis is down.
func (n *Node) Event(room string, kind hub.Kind, payload []byte) {
	n.queue(job{room: room, event: n.cfg.NodeID + "|e" + strconv.Itoa(int(kind)) + "|" + string(payload)})
}

// maxPipeline bounds the publishes sent in one round trip.
const maxPipeline = 256

// publisher sends queued publishes to Redis, as many as are waiting in one
// pipeline: one round trip for a burst, in queue order (so one sender's
// messages keep their order).
func (n *Node) publisher() {
	defer n.wg.Done()
	batch := make([]job, 0, maxPipeline)
	for {
		select {
		case <-n.stop:
			return
		case j := <-n.jobs:
			batch = append(batch[:0], j)
		}
	fill:
		for len(batch) < maxPipeline {
			select {
			case j := <-n.jobs:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		n.send(batch, true)
		clear(batch)
	}
}

// send runs one pipeline; a Redis that lost the scripts (restarted) gets
// them again and the batch is sent once more.
func (n *Node) send(batch []job, retry bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	pipe := n.cfg.Client.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, j := range batch {
		switch {
		case j.event != "":
			if n.cfg.Sharded {
				pipe.SPublish(ctx, n.channelOf(j.room), j.event)
			} else {
				pipe.Publish(ctx, n.channelOf(j.room), j.event)
			}
		case j.run != nil:
			cmds[i] = j.run(ctx, pipe)
		default:
			cmds[i] = n.store.Queue(ctx, pipe, j.prep)
		}
	}
	_, _ = pipe.Exec(ctx) // errors are per command, below
	for i, j := range batch {
		if j.event != "" {
			continue
		}
		// A Redis that restarted has none of the scripts: load them all
		// again and send the rest of the batch once more.
		if history.IsNoScript(cmds[i].Err()) && retry {
			if n.loadScripts(ctx) == nil {
				n.send(batch[i:], false)
				return
			}
		}
		if j.run != nil {
			j.then(cmds[i])
			continue
		}
		ack, dup, err := history.ParseAppend(j.room, cmds[i])
		if history.IsNoScript(err) {
			err = ErrUnavailable
		}
		j.done(backend.Ack{Ack: ack, Dup: dup}, err)
	}
}

// loadScripts loads every script the node runs with EVALSHA.
func (n *Node) loadScripts(ctx context.Context) error {
	return errors.Join(n.store.LoadScripts(ctx), loadPresenceScripts(ctx, n.cfg.Client))
}

// queue queues j unless the node is closed, Redis is down or the queue is
// full, and reports whether it did. Under closeMu, so that nothing is
// queued after Close has emptied the queue: every queued job is answered.
func (n *Node) queue(j job) bool {
	n.closeMu.RLock()
	defer n.closeMu.RUnlock()
	if n.closed || !n.ready.Load() {
		return false
	}
	select {
	case n.jobs <- j:
		return true
	default:
		return false
	}
}
