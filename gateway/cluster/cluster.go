package cluster

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hub"
)

// Sink is where a node's subscription delivers: by default the hub of
// Config.Hub (see hubSink); tests record instead.
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
	// Sharded: publish with SPUBLISH and subscribe with SSUBSCRIBE, rooms
	// laid out by bucket (history.Layout); Redis Cluster 7 or later only.
	// Every node of a cluster must agree: a classic node and a sharded one
	// do not hear each other.
	Sharded bool
	// PubSub, for Open: "sharded", "classic", or "auto" or empty: sharded
	// on a Redis Cluster, classic on one Redis or Sentinel. It sets
	// Sharded.
	PubSub   string
	QueueLen int // publishes waiting for Redis; beyond it senders get unavailable
	Log      *slog.Logger
	// PresenceRefresh: how often a node refreshes its presence entries
	// (they expire after 3x) and sweeps expired ones (default 5s).
	PresenceRefresh time.Duration
	// Hub is the node's hub: deliveries go to it (unless New is given a
	// Sink), and presence is refreshed for its rooms. Tests may leave it
	// nil.
	Hub *hub.Hub
}

// ErrUnavailable is returned when Redis cannot take a publish now.
var ErrUnavailable = history.ErrUnavailable

// Node is one gateway's link to the others.
type Node struct {
	cfg   Config
	owned redis.UniversalClient // closed by Close (Open made it)
	sink  Sink
	store *history.Redis
	log   *slog.Logger
	keys  history.Layout
	ps    *redis.PubSub         // classic: one subscription for every room
	subs  map[int]*redis.PubSub // sharded: one per bucket, under mu
	stuck map[int]int           // sharded: retry ticks a bucket\'s SSUBSCRIBE has waited, under mu
	in    chan received         // what every subscription receives, for the subscriber

	mu         sync.Mutex
	rooms      map[string]*room    // rooms with local members
	subscribed map[string]subState // channels SUBSCRIBE was sent for and not undone
	kick       chan struct{}

	jobs  chan job
	ready atomic.Bool // Redis answered the last health check

	closeMu sync.RWMutex // queue's RLock against Close's Lock
	closed  bool
	stop    chan struct{}
	wg      sync.WaitGroup

	readsMu sync.Mutex
	reads   []readDone    // the subscriber's history reads that came back
	readCh  chan struct{} // a read came back
}

// room is a room with local members. refs, isReady and waiters are under
// Node.mu; the rest belongs to the subscriber goroutine.
type room struct {
	refs    int
	isReady bool     // the subscription is live and the position known
	waiters []waiter // Subscribe calls waiting for isReady

	known   bool   // last and epoch have been read from the history
	last    uint64 // seq of the last message delivered
	epoch   string
	reading bool     // a history read for the room is in flight
	held    []string // payloads received meanwhile, "origin|seq|payload", in order
}

// waiter is a Subscribe call waiting for its room to be live.
type waiter struct {
	done     func(error)
	deadline time.Time
}

type subState uint8

const (
	subSent      subState = iota + 1 // SUBSCRIBE sent, not confirmed yet
	subConfirmed                     // live
)

// channelOf names a room's channel; its hash tag puts it with the room's
// keys.
func (n *Node) channelOf(r string) string { return n.keys.Channel(r) }

func (n *Node) roomOf(channel string) (string, bool) { return n.keys.RoomOf(channel, "c") }

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
		cfg: cfg, log: cfg.Log, keys: history.Layout{Sharded: cfg.Sharded},
		in: make(chan received, 4096), subs: map[int]*redis.PubSub{}, stuck: map[int]int{},
		rooms: map[string]*room{}, subscribed: map[string]subState{},
		kick: make(chan struct{}, 1), jobs: make(chan job, cfg.QueueLen), stop: make(chan struct{}),
		readCh: make(chan struct{}, 1),
	}
	if sink == nil {
		sink = hubSink{n}
	}
	n.sink = sink
	n.store = history.NewRedis(cfg.Client, history.RedisOptions{
		Size: cfg.Size, TTL: cfg.HistoryTTL, Cluster: cfg.Cluster,
		Channel: n.channelOf, Origin: cfg.NodeID, Layout: n.keys,
	})
	if !cfg.Sharded {
		n.ps = cfg.Client.Subscribe(context.Background())
		n.forward(n.ps)
	}
	n.wg.Add(4)
	go n.health()
	go n.subscriber()
	go n.publisher()
	go n.presenceLoop()
	return n
}

// Ready reports whether Redis answered the last health check.
func (n *Node) Ready() bool {
	n.closeMu.RLock()
	defer n.closeMu.RUnlock()
	return !n.closed && n.ready.Load()
}

// Close stops the node's goroutines; queued publishes and reads fail, and
// so do Subscribe calls still waiting; calls after it fail at once. A
// second Close does nothing.
func (n *Node) Close() error {
	n.closeMu.Lock()
	was := n.closed
	n.closed = true
	n.closeMu.Unlock()
	if was {
		return nil
	}
	close(n.stop)
	n.closeSubs()
	n.wg.Wait()
	n.mu.Lock()
	var late []waiter
	for _, st := range n.rooms {
		late = append(late, st.waiters...)
		st.waiters = nil
	}
	n.mu.Unlock()
	for _, w := range late {
		w.done(ErrUnavailable)
	}
	for {
		select {
		case j := <-n.jobs:
			j.fail(ErrUnavailable)
		default:
			if n.owned != nil {
				return n.owned.Close()
			}
			return nil
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
		// A Redis slower than this is down as far as clients can tell.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := n.cfg.Client.Ping(ctx).Err()
		if err == nil && !n.ready.Load() {
			err = n.loadScripts(ctx)
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
