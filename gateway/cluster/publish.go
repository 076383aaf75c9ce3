package cluster

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hub"
)

// job is one queued publish: a message (prep, done) or an event.
type job struct {
	room  string
	prep  history.Prepared
	done  func(history.Ack, bool, error)
	event string // "origin|e<kind>|payload" for events
	// Other commands (presence): run queues it, then gets its reply.
	run  func(context.Context, redis.Pipeliner) *redis.Cmd
	then func(*redis.Cmd)
}

func (j job) fail(err error) {
	switch {
	case j.done != nil:
		j.done(history.Ack{}, false, err)
	case j.then != nil:
		c := redis.NewCmd(context.Background())
		c.SetErr(err)
		j.then(c)
	}
}

// Publish queues a message of room for storing and publishing; done is
// called from the publisher goroutine with the ack (or the original ack
// and dup true for a repeated key, or an error). A full queue or an
// unreachable Redis fails at once with ErrUnavailable: nothing is stored
// and done is not called.
func (n *Node) Publish(room, user, key string, enc history.Encoder, done func(history.Ack, bool, error)) error {
	if !n.Ready() {
		return ErrUnavailable
	}
	p, err := n.store.Prepare(room, user, key, enc)
	if err != nil {
		return err
	}
	select {
	case n.jobs <- job{room: room, prep: p, done: done}:
		return nil
	default:
		return ErrUnavailable
	}
}

// Event publishes a frame outside history (typing, read, presence) to the
// other nodes' members of room; this node delivers its own. Best effort:
// dropped when the queue is full or Redis is down.
func (n *Node) Event(room string, kind hub.Kind, payload []byte) {
	if !n.Ready() {
		return
	}
	select {
	case n.jobs <- job{room: room, event: n.cfg.NodeID + "|e" + strconv.Itoa(int(kind)) + "|" + string(payload)}:
	default:
	}
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
			pipe.Publish(ctx, channelOf(j.room), j.event)
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
		if j.run != nil {
			if history.IsNoScript(cmds[i].Err()) && retry {
				if lerr := loadPresenceScripts(ctx, n.cfg.Client); lerr == nil {
					n.send(batch[i:], false)
					return
				}
			}
			j.then(cmds[i])
			continue
		}
		ack, dup, err := history.ParseAppend(j.room, cmds[i])
		if history.IsNoScript(err) && retry {
			if lerr := n.store.LoadScripts(ctx); lerr == nil {
				n.send(batch[i:], false)
				return
			}
		}
		if history.IsNoScript(err) {
			err = ErrUnavailable
		}
		j.done(ack, dup, err)
	}
}
