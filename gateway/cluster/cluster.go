// Package cluster makes several gateway nodes one chat through Redis.
//
// A room's messages are stored and published by one Lua script (see
// history.Redis): seq, history, idempotency key and PUBLISH in one step, so
// Redis's pub/sub order is seq order. Every node, the sender's included,
// delivers a room's messages from its subscription, in that order, and
// fills any gap it sees (a missed message, a reconnect) from the history
// before going on. A node subscribes only to the rooms it has local members
// in, reference counted, with subscribe and unsubscribe calls batched.
//
// Nothing here runs on nbio's pollers: publishes go through a bounded
// queue to one pipelining goroutine, and subscriptions are read by another.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hub"
)

// Sink is where a node's subscription delivers, implemented by the gateway.
type Sink interface {
	// Message delivers a stored message of room to local members; for a
	// room, calls come in seq order with no gaps.
	Message(room string, seq uint64, frame []byte)
	// Event delivers a frame outside history (typing, read, presence)
	// published by another node.
	Event(room string, kind hub.Kind, frame []byte)
	// Lost says room's history was lost while this node was subscribed:
	// it is now at seq latest of a new epoch. Local members must be told
	// (docs/protocol.md: an unsolicited joined), and messages continue from there.
	Lost(room string, latest uint64, epoch string)
	// Offline says user's presence in room expired on every node (a node
	// died without cleaning up); this node was the one to sweep it.
	Offline(room, user string)
}

// Config configures a node's cluster link.
type Config struct {
	Client     redis.UniversalClient
	NodeID     string
	Size       int           // messages kept per room
	HistoryTTL time.Duration // a room's keys expire this long after its last message (0: never)
	Cluster    bool          // Client is a Redis Cluster client (see history.RedisOptions)
	QueueLen   int           // publishes waiting for Redis; beyond it senders get unavailable
	Log        *slog.Logger
	// PresenceRefresh: how often a node refreshes its presence entries
	// (they expire after 3x) and sweeps expired ones (default 5s).
	PresenceRefresh time.Duration
	// Rooms enumerates the rooms with local members and their users.
	Rooms func(fn func(room string, users []string))
}

// ErrUnavailable is returned when Redis cannot take a publish now.
var ErrUnavailable = history.ErrUnavailable

// Node is one gateway's link to the others.
type Node struct {
	cfg   Config
	sink  Sink
	store *history.Redis
	log   *slog.Logger
	ps    *redis.PubSub

	mu         sync.Mutex
	rooms      map[string]*room    // rooms with local members
	subscribed map[string]subState // channels SUBSCRIBE was sent for and not undone
	kick       chan struct{}

	jobs  chan job
	ready atomic.Bool
	stop  chan struct{}
	wg    sync.WaitGroup
}

// room is a subscribed room. refs is under Node.mu; last and epoch belong
// to the subscription goroutine.
type room struct {
	refs    int
	ready   chan struct{} // closed once the subscription is live
	isReady bool
	known   bool   // last and epoch have been read from the history
	last    uint64 // seq of the last message delivered
	epoch   string
}

type subState uint8

const (
	subSent      subState = iota + 1 // SUBSCRIBE sent, not confirmed yet
	subConfirmed                     // live
)

// channelOf names a room's channel; the braces put it with the room's
// keys.
func channelOf(r string) string { return history.RoomKey(r) + "c" }

func roomOf(channel string) (string, bool) {
	s, ok := strings.CutPrefix(channel, "gw:{")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(s, "}:c")
}

// New starts a node's link: the history store, the publisher and the
// subscriber. Redis need not be up yet; the node is not Ready until it is.
func New(cfg Config, sink Sink) *Node {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 10000
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.PresenceRefresh <= 0 {
		cfg.PresenceRefresh = 5 * time.Second
	}
	n := &Node{
		cfg: cfg, sink: sink, log: cfg.Log,
		rooms: map[string]*room{}, subscribed: map[string]subState{},
		kick: make(chan struct{}, 1), jobs: make(chan job, cfg.QueueLen), stop: make(chan struct{}),
	}
	n.store = history.NewRedis(cfg.Client, history.RedisOptions{
		Size: cfg.Size, TTL: cfg.HistoryTTL, Cluster: cfg.Cluster,
		Channel: channelOf, Origin: cfg.NodeID,
	})
	n.ps = cfg.Client.Subscribe(context.Background())
	n.wg.Add(4)
	go n.health()
	go n.subscriber()
	go n.publisher()
	go n.presenceLoop()
	return n
}

// Store is the node's history store (Redis).
func (n *Node) Store() history.Store { return n.store }

// Ready reports whether Redis answered the last health check.
func (n *Node) Ready() bool { return n.ready.Load() }

// Close stops the node's goroutines; queued publishes fail.
func (n *Node) Close() {
	close(n.stop)
	_ = n.ps.Close()
	n.wg.Wait()
	for {
		select {
		case j := <-n.jobs:
			j.fail(ErrUnavailable)
		default:
			return
		}
	}
}

// unreachableWarnEvery is how often the node repeats that Redis is down.
const unreachableWarnEvery = 30 * time.Second

// health pings Redis twice a second: Ready follows, and scripts are
// (re)loaded whenever Redis comes back (a restarted Redis has none).
func (n *Node) health() {
	defer n.wg.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var down, warned time.Time // since when Redis is unreachable; last warning
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		err := n.cfg.Client.Ping(ctx).Err()
		if err == nil && !n.ready.Load() {
			err = errors.Join(n.store.LoadScripts(ctx), loadPresenceScripts(ctx, n.cfg.Client))
		}
		cancel()
		was := n.ready.Swap(err == nil)
		now := time.Now()
		switch {
		case err != nil && down.IsZero():
			// At start too: a node that never reached Redis says so.
			down, warned = now, now
			n.log.Warn("redis unreachable: not ready", "err", err)
		case err != nil && now.Sub(warned) >= unreachableWarnEvery:
			warned = now
			n.log.Warn("redis still unreachable: not ready", "since", down.Format(time.RFC3339), "err", err)
		case err == nil && !was:
			down = time.Time{}
			n.log.Info("redis reachable: ready")
		}
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

// Acquire counts a local member of r and returns once the node's
// subscription to r is live, so that every message stored after the
// caller reads r's history reaches it. Release undoes it.
func (n *Node) Acquire(ctx context.Context, r string) error {
	n.mu.Lock()
	st := n.rooms[r]
	if st == nil {
		st = &room{ready: make(chan struct{})}
		n.rooms[r] = st
	}
	st.refs++
	ready := st.ready
	n.mu.Unlock()
	n.poke()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		n.Release(r)
		return fmt.Errorf("%w: subscribing to %s: %v", ErrUnavailable, r, ctx.Err())
	}
}

// Release drops a local member of r; the last one unsubscribes.
func (n *Node) Release(r string) {
	n.mu.Lock()
	if st := n.rooms[r]; st != nil {
		st.refs--
		if st.refs <= 0 {
			delete(n.rooms, r)
		}
	}
	n.mu.Unlock()
	n.poke()
}

func (n *Node) poke() {
	select {
	case n.kick <- struct{}{}:
	default:
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
		c := channelOf(r)
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
		if r, _ := roomOf(c); n.rooms[r] == nil {
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
		errs = append(errs, n.ps.Unsubscribe(ctx, unsub...))
	}
	if len(sub) > 0 {
		if err := n.ps.Subscribe(ctx, sub...); err != nil {
			n.mu.Lock()
			for _, c := range sub {
				delete(n.subscribed, c) // tried again at the next poke
			}
			n.mu.Unlock()
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// subscriber reads the node's subscription: confirmations make rooms live,
// messages are delivered in seq order.
func (n *Node) subscriber() {
	defer n.wg.Done()
	ch := n.ps.ChannelWithSubscriptions(redis.WithChannelSize(4096))
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
		case <-retry.C:
			n.mu.Lock()
			pending := false
			for r, st := range n.rooms {
				if n.subscribed[channelOf(r)] != subConfirmed || !st.isReady {
					pending = true
				}
			}
			n.mu.Unlock()
			if pending {
				_ = n.syncSubscriptions()
			}
		case v, ok := <-ch:
			if !ok {
				return
			}
			switch m := v.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					n.live(m.Channel)
				}
			case *redis.Message:
				n.receive(m.Channel, m.Payload)
			}
		}
	}
}

// live handles a confirmed subscription (a new one, or one go-redis made
// again after reconnecting): it learns where the room's history stands,
// delivers what a reconnect made this node miss, and marks the room ready.
func (n *Node) live(channel string) {
	r, ok := roomOf(channel)
	if !ok {
		return
	}
	n.mu.Lock()
	if n.subscribed[channel] == subSent {
		n.subscribed[channel] = subConfirmed
	}
	st := n.rooms[r]
	n.mu.Unlock()
	if st == nil {
		return
	}
	if !st.known {
		_, latest, epoch, _, err := n.store.Range(r, 0, 0, 0)
		if err != nil {
			n.log.Warn("subscribed room: reading its position", "room", r, "err", err)
			return // not ready yet: the retry tick tries again
		}
		st.last, st.epoch, st.known = latest, epoch, true
	} else {
		n.catchUp(r, st, 0)
	}
	n.mu.Lock()
	if !st.isReady {
		st.isReady = true
		close(st.ready)
	}
	n.mu.Unlock()
}

// catchUp delivers r's messages after st.last and before upTo (0: all),
// from the history; when the history's epoch changed, the room was lost.
func (n *Node) catchUp(r string, st *room, upTo uint64) {
	before := upTo
	if before == 0 {
		before = 1 << 52
	}
	msgs, latest, epoch, complete, err := n.store.Range(r, st.last, before, n.cfg.Size)
	if err != nil {
		n.log.Warn("catching up a room", "room", r, "err", err)
		return
	}
	if epoch != st.epoch || !complete {
		// Its history is gone, or moved on past what is held: members
		// are told where the room stands now.
		n.log.Warn("room history lost or out of reach; members resynchronised", "room", r,
			"epoch", st.epoch, "now", epoch, "complete", complete)
		st.last, st.epoch = latest, epoch
		n.sink.Lost(r, latest, epoch)
		return
	}
	for _, m := range msgs {
		n.sink.Message(r, m.Seq, m.Frame)
		st.last = m.Seq
	}
}

// receive handles one published frame: "origin|seq|payload" for a stored
// message, "origin|e<kind>|payload" for an event.
func (n *Node) receive(channel, v string) {
	r, ok := roomOf(channel)
	if !ok {
		return
	}
	origin, rest, ok1 := strings.Cut(v, "|")
	tag, payload, ok2 := strings.Cut(rest, "|")
	if !ok1 || !ok2 || tag == "" {
		return
	}
	n.mu.Lock()
	st := n.rooms[r]
	live := st != nil && st.isReady
	n.mu.Unlock()
	if !live {
		return // no local members, or not live yet: live() learns the position
	}
	if tag[0] == 'e' {
		if origin == n.cfg.NodeID {
			return // delivered locally when sent
		}
		k, err := strconv.Atoi(tag[1:])
		if err == nil {
			n.sink.Event(r, hub.Kind(k), history.TextFrame(payload))
		}
		return
	}
	seq, err := strconv.ParseUint(tag, 10, 64)
	if err != nil || seq <= st.last {
		return
	}
	if seq > st.last+1 {
		n.catchUp(r, st, seq)
		if seq <= st.last {
			return
		}
	}
	n.sink.Message(r, seq, history.TextFrame(payload))
	st.last = seq
}
