package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hook"
)

// Message notifications in a cluster (package hook): every node runs its
// hooks over a HookSource, and the one holding the notifier lease sends
// each message once for the whole cluster, from cursors every node can
// read, so that the next holder resumes where the last one stopped.
//
// Two keys, under one hash tag so that a script may check the lease while
// writing a cursor (a Redis Cluster runs a script on one slot only):
//
//   - hookLeaderKey, the lease: "<node id>/<random>" of its holder, set NX
//     with a PX of HookOptions.Lease, renewed every Lease/3 only while it
//     is still the holder's, deleted by the holder's Close. The random
//     part is new at every acquisition: two nodes configured with one id
//     still cannot both hold it, and a holder that lost it and got it back
//     has another term (see Leader).
//   - hookCursorKey, the cursors: a hash, field room, value "<epoch>|<seq>",
//     the last seq notified in the room's history of that epoch (the
//     epoch key of history.Redis). Written only by the lease's holder,
//     checked in the same script: a node that lost the lease with a batch
//     in flight cannot move a cursor its successor has moved since.
const (
	hookLeaderKey = "hook:{gw}:leader"
	hookCursorKey = "hook:{gw}:cursor"
)

// DefaultHookLease is HookOptions.Lease's default.
const DefaultHookLease = 5 * time.Second

// minHookLease keeps a renewal period (Lease/3) long enough for a round
// trip to Redis.
const minHookLease = 30 * time.Millisecond

// HookOptions configure a HookSource.
type HookOptions struct {
	// Lease is how long the notifier lease outlives its holder's last
	// renewal (default DefaultHookLease): the longest the cluster's message
	// notifications pause when the holder dies without releasing it. It is
	// renewed every Lease/3; the other nodes try to take it as often.
	Lease time.Duration
}

// Scripts; KEYS and ARGV as each comment says. Run uses EVALSHA and falls
// back to EVAL, so a Redis that lost its scripts needs no reload.
var (
	// KEYS lease; ARGV token, ttl ms. Renews the lease only if it is still
	// the caller's (1), else 0.
	leaseRenew = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)
	// KEYS lease; ARGV token. Deletes the lease only if it is still the
	// caller's.
	leaseRelease = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
	// KEYS lease, cursors; ARGV token, room, "epoch|seq". Sets the cursor
	// only while the caller holds the lease (1), else 0.
	cursorSet = redis.NewScript(`if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1`)
	// KEYS lease, cursors; ARGV token, rooms... Deletes the rooms' cursors
	// only while the caller holds the lease.
	cursorDrop = redis.NewScript(`if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('HDEL', KEYS[2], unpack(ARGV, 2))`)
)

// errNotLeader: a cursor write refused because the lease has passed to
// another node (or expired): that node's cursors win.
var errNotLeader = errors.New("cluster: hook cursor not saved: this node no longer holds the notifier lease")

// HookSource is hook.Source and hook.Leader over the cluster's Redis: the
// rooms' history as history.Redis keeps it, cursors and a lease shared by
// every node (see hookLeaderKey). One goroutine renews the lease. The
// Source methods and Leader are called from the hook's message sender, one
// at a time, and may block on Redis.
//
// A message is notified once per cluster while one node holds the lease.
// What a handover may repeat is the batch the old holder had in flight:
// sent, but its cursor refused, or its lease gone before the 2xx came. A
// Redis that loses the lease key without the holder knowing (a restart
// without persistence, a failover before replication) lets two nodes send
// for up to Lease: duplicates then, never losses, since only the holder's
// cursor writes are kept.
type HookSource struct {
	c     redis.UniversalClient
	keys  history.Layout
	store *history.Redis
	log   *slog.Logger
	node  string
	ttl   time.Duration
	base  time.Time // the origin of until, on the monotonic clock

	term  atomic.Pointer[string] // the token of the lease held (nil: none)
	until atomic.Int64           // since base: Leader is false from then on
	seen  atomic.Pointer[string] // the term Leader last reported true for

	// The sender's goroutine only.
	read map[string]string // room -> epoch of what Range last returned, until SetCursor

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var (
	_ hook.Source = (*HookSource)(nil)
	_ hook.Leader = (*HookSource)(nil)
)

// NewHookSource starts n's HookSource: it reads n's history, with n's
// client, and competes for the notifier lease at once. Close it before n
// (whose client it uses), after the hooks that read it.
func NewHookSource(n *Node, opt HookOptions) *HookSource {
	if opt.Lease <= 0 {
		opt.Lease = DefaultHookLease
	}
	opt.Lease = max(opt.Lease, minHookLease)
	s := &HookSource{
		c: n.cfg.Client, keys: n.keys, store: n.store, log: n.log, node: n.cfg.NodeID, ttl: opt.Lease,
		base: time.Now(), read: map[string]string{},
		stop: make(chan struct{}),
	}
	s.wg.Add(1)
	go s.lease()
	return s
}

// Leader implements hook.Leader: an atomic read of the lease's state, true
// while this node holds it and the last renewal is recent enough that
// Redis cannot have let it expire (it reports false from Lease/4 before
// that). A term that changed since Leader last reported true (the lease
// was lost and taken again meanwhile) is reported false once: the sender
// then forgets what it knew, which another holder may have made stale.
func (s *HookSource) Leader() bool {
	t := s.term.Load()
	if t == nil || int64(time.Since(s.base)) >= s.until.Load() {
		s.seen.Store(nil)
		return false
	}
	if prev := s.seen.Load(); prev != nil && *prev != *t {
		s.seen.Store(nil)
		return false
	}
	s.seen.Store(t)
	return true
}

// lease is the goroutine that takes, keeps and renews the lease.
func (s *HookSource) lease() {
	defer s.wg.Done()
	tk := time.NewTicker(s.ttl / 3)
	defer tk.Stop()
	failing := false
	for {
		err := s.renew()
		if err != nil && !failing {
			s.log.Warn("hook lease: Redis unreachable: not sending message notifications", "err", err)
		} else if err == nil && failing {
			s.log.Info("hook lease: Redis reachable again")
		}
		failing = err != nil
		select {
		case <-s.stop:
			return
		case <-tk.C:
		}
	}
}

// renew renews the lease held, or tries to take it.
func (s *HookSource) renew() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.ttl/3)
	defer cancel()
	// The lease in Redis runs from when Redis gets the command, after this:
	// counting from here errs on the side of stopping early.
	at := time.Since(s.base)
	valid := int64(at + s.ttl - s.ttl/4)
	if t := s.term.Load(); t != nil {
		n, err := leaseRenew.Run(ctx, s.c, []string{hookLeaderKey}, *t, s.ttl.Milliseconds()).Int()
		if err != nil {
			// Not known to be lost, but no longer known to be held: no
			// batch goes out until a renewal succeeds.
			s.until.Store(0)
			return err
		}
		if n == 1 {
			s.until.Store(valid)
			return nil
		}
		s.until.Store(0) // before term: Leader reads term first
		s.term.Store(nil)
		s.log.Info("hook lease lost: another node sends message notifications")
	}
	tok := s.node + "/" + randomToken()
	ok, err := s.c.SetNX(ctx, hookLeaderKey, tok, s.ttl).Result()
	if err != nil || !ok {
		return err
	}
	s.term.Store(&tok)
	s.until.Store(valid)
	s.log.Info("hook lease taken: this node sends message notifications", "lease", tok)
	return nil
}

func randomToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Close stops the lease's goroutine and releases the lease if this node
// holds it, so that another node takes over within a renewal period (Lease/3)
// instead of a whole Lease. Close the hooks first: their last flush needs
// the lease. A second Close does nothing.
func (s *HookSource) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.until.Store(0)
		t := s.term.Swap(nil)
		if t == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := leaseRelease.Run(ctx, s.c, []string{hookLeaderKey}, *t).Err(); err != nil {
			s.closeErr = fmt.Errorf("cluster: releasing the hook lease (another node takes it when it expires): %w", err)
		}
	})
	return s.closeErr
}

// Range implements hook.Source over the node's history.Redis, in the
// calling goroutine (not through the node's publisher queue: the
// notifier may wait for Redis, a chat path may not).
func (s *HookSource) Range(room string, after uint64, limit int) ([]hook.Message, error) {
	msgs, epoch, err := hook.HistoryRangeEpoch(s.store, room, after, limit)
	if err == nil && len(msgs) > 0 {
		// SetCursor saves the seq in the epoch of the messages it names,
		// not the room's epoch by then: a room lost and started over while
		// the batch was retried must not have its new seqs skipped.
		s.read[room] = epoch
	}
	return msgs, err
}

// Cursor implements hook.Source: 0 when none was saved, or when it was
// saved in another epoch of the room's history (lost and started over
// since: its seqs are not the ones the room holds now).
func (s *HookSource) Cursor(room string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	pipe := s.c.Pipeline()
	cur := pipe.HGet(ctx, hookCursorKey, room)
	ep := pipe.Get(ctx, s.keys.RoomKey(room)+"e")
	_, _ = pipe.Exec(ctx) // errors are per command, below
	v, err := cur.Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	epoch, err := ep.Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil // the room's history is gone altogether
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return cursorIn(v, epoch), nil
}

// cursorIn reads a cursor value, "epoch|seq": its seq when epoch is the
// room's, else 0 (a value this code did not write is 0 too: the room is
// notified again from its oldest message rather than stalled).
func cursorIn(v, epoch string) uint64 {
	e, seq, ok := strings.Cut(v, "|")
	if !ok || e != epoch {
		return 0
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// SetCursor implements hook.Source. It is refused (errNotLeader) unless
// this node holds the lease it last reported with Leader: a cursor is the
// holder's alone.
func (s *HookSource) SetCursor(room string, seq uint64) error {
	tok := s.seen.Load()
	epoch, ok := s.read[room]
	delete(s.read, room)
	if tok == nil {
		return errNotLeader
	}
	if !ok {
		// Not read by this node (it moved past messages it skipped): the
		// room's epoch now. Range with no limit reads only that.
		p, err := s.store.Range(room, 0, 0, 0)
		if err != nil {
			return err
		}
		epoch = p.Epoch
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	n, err := cursorSet.Run(ctx, s.c, []string{hookLeaderKey, hookCursorKey},
		*tok, room, epoch+"|"+strconv.FormatUint(seq, 10)).Int()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if n == 0 {
		return errNotLeader
	}
	return nil
}

// Pending implements hook.Source: the rooms, written by any node, whose
// latest seq is past their cursor. The hook's sender calls it only while
// this node leads: when it takes the lease, and every hook.Config.Rescan.
//
// It costs Redis a SCAN of the whole keyspace (every master of a Redis
// Cluster), scanCount keys per call: O(keys) work, every room's keys
// (seq, history, epoch, presence) and the users' idempotency keys
// included, whether or not anything was written; then an HSCAN of the
// cursors (a field per room notified and still held) and two GETs per
// room, pipelined pipeChunk rooms a round trip. Rooms the scan did not
// find have their cursors dropped (their history expired). So the cost
// grows with the rooms held, not with the traffic: measured on one Redis,
// 100,000 rooms (300,000 keys) took about 0.5 s of Redis time and 1 s of
// the leader's per call, in steps of about 1 ms, so that no publish waits
// long behind it. A Rescan of 1s suits up to about 10,000 rooms (5% of a
// Redis core); beyond, Rescan must grow with the rooms: messages stored
// through other nodes then wait up to a Rescan (the leader's own, marked
// by Stored, do not). Learning of other nodes' messages as they happen
// (a pattern subscription, or a set of written rooms kept by the append
// script) would make it grow with the traffic instead.
func (s *HookSource) Pending() ([]string, error) {
	// Between batches: no SetCursor is waiting for a Range's epoch, and a
	// room a sender abandoned must not keep its entry.
	clear(s.read)
	rooms, err := s.scanRooms()
	if err != nil {
		return nil, err
	}
	cursors, err := s.cursors()
	if err != nil {
		return nil, err
	}
	var behind []string
	for chunk := range slices.Chunk(rooms, pipeChunk) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		pipe := s.c.Pipeline()
		seqs := make([]*redis.StringCmd, len(chunk))
		epochs := make([]*redis.StringCmd, len(chunk))
		for i, r := range chunk {
			seqs[i] = pipe.Get(ctx, s.keys.RoomKey(r)+"s")
			epochs[i] = pipe.Get(ctx, s.keys.RoomKey(r)+"e")
		}
		_, err := pipe.Exec(ctx)
		cancel()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		for i, r := range chunk {
			latest, err := seqs[i].Uint64()
			if err != nil {
				continue // expired since the scan
			}
			if latest > cursorIn(cursors[r], epochs[i].Val()) {
				behind = append(behind, r)
			}
		}
	}
	s.dropCursors(rooms, cursors)
	return behind, nil
}

const (
	scanCount   = 1000            // keys a SCAN call looks at
	pipeChunk   = 500             // rooms read in one round trip
	callTimeout = 5 * time.Second // one call or round trip of the notifier's
)

// cursors reads every saved cursor, room -> "epoch|seq". HSCAN rather
// than HGETALL: one HGETALL of a large hash would hold Redis, and every
// chat's publishes, for tens of milliseconds.
func (s *HookSource) cursors() (map[string]string, error) {
	out := map[string]string{}
	var cur uint64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		kv, next, err := s.c.HScan(ctx, hookCursorKey, cur, "", scanCount).Result()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%w: reading hook cursors: %v", ErrUnavailable, err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		if next == 0 {
			return out, nil
		}
		cur = next
	}
}

// scanRooms lists the rooms with a seq key, in order.
func (s *HookSource) scanRooms() ([]string, error) {
	var mu sync.Mutex
	found := map[string]struct{}{}
	scan := func(c redis.Cmdable) error {
		var cur uint64
		for {
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			keys, next, err := c.Scan(ctx, cur, s.keys.SeqPattern(), scanCount).Result()
			cancel()
			if err != nil {
				return fmt.Errorf("%w: scanning rooms: %v", ErrUnavailable, err)
			}
			mu.Lock()
			for _, k := range keys {
				// A user's idempotency key may match the pattern too; no
				// room name holds a brace.
				if r, ok := s.keys.RoomOf(k, "s"); ok && codec.ValidRoom(r) {
					found[r] = struct{}{}
				}
			}
			mu.Unlock()
			if next == 0 {
				return nil
			}
			cur = next
		}
	}
	var err error
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(context.Background(), func(_ context.Context, c *redis.Client) error { return scan(c) })
	} else {
		err = scan(s.c)
	}
	if err != nil {
		return nil, err
	}
	rooms := make([]string, 0, len(found))
	for r := range found {
		rooms = append(rooms, r)
	}
	slices.Sort(rooms)
	return rooms, nil
}

// dropCursors deletes the cursors of rooms the scan did not find: SCAN
// returns every key present throughout it, so such a room's history
// expired (or was lost) meanwhile, and its cursor names seqs of an epoch
// gone. Without this the hash would keep a field for every room ever
// notified. Best effort: a failure only leaves them for the next Pending.
func (s *HookSource) dropCursors(rooms []string, cursors map[string]string) {
	tok := s.seen.Load()
	if tok == nil {
		return
	}
	var gone []any
	for r := range cursors {
		if _, ok := slices.BinarySearch(rooms, r); !ok {
			gone = append(gone, r)
		}
	}
	for chunk := range slices.Chunk(gone, pipeChunk) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err := cursorDrop.Run(ctx, s.c, []string{hookLeaderKey, hookCursorKey}, append([]any{*tok}, chunk...)...).Err()
		cancel()
		if err != nil {
			s.log.Warn("hook: dropping the cursors of rooms gone", "err", err)
			return
		}
	}
}
