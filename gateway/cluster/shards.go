package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/gateway/history"
)

// Subscriptions. In the classic mode one subscription (one connection,
// to any node: Redis Cluster broadcasts PUBLISH to every node) carries
// every room. In the sharded mode a room's messages reach only the shard
// that owns its slot, and a subscription must be on that shard: the node
// keeps one per bucket (history.Layout) with local members, at most
// history.Buckets. All of a bucket's channels share its hash slot, which
// keeps each subscription valid as go-redis manages it: it connects to
// the owner of its first channel's slot, and after a reconnect sends every
// channel again in one SSUBSCRIBE, which Redis refuses (CROSSSLOT) for
// channels of different slots.
//
// When a slot moves to another master, or its master becomes a replica,
// Redis ends the subscriptions of that slot's channels with an
// "sunsubscribe" nobody asked for. The node then drops the bucket's
// subscription, reloads the cluster's slot map and subscribes again at the
// new owner; once confirmed, each room reads from its history what it
// missed meanwhile (live), as after any reconnect.

// received is what a subscription read, with the subscription it came
// from: an "sunsubscribe" of a subscription already replaced is stale.
type received struct {
	ps *redis.PubSub
	v  any
}

// forward hands what ps receives to the subscriber goroutine until ps is
// closed or the node stops.
func (n *Node) forward(ps *redis.PubSub) {
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(4096))
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for v := range ch {
			select {
			case n.in <- received{ps, v}:
			case <-n.stop:
				return
			}
		}
	}()
}

// closeSubs closes every subscription (Close).
func (n *Node) closeSubs() {
	if n.ps != nil {
		_ = n.ps.Close()
	}
	n.mu.Lock()
	subs := n.subs
	n.subs = map[int]*redis.PubSub{}
	n.mu.Unlock()
	for _, ps := range subs {
		_ = ps.Close()
	}
}

// subscribe sends SUBSCRIBE (classic) or one SSUBSCRIBE per bucket
// (sharded) for channels; it returns the channels whose command failed.
func (n *Node) subscribe(ctx context.Context, channels []string) ([]string, error) {
	if !n.cfg.Sharded {
		if err := n.ps.Subscribe(ctx, channels...); err != nil {
			return channels, err
		}
		return nil, nil
	}
	cc, ok := n.cfg.Client.(*redis.ClusterClient)
	if !ok {
		return channels, errors.New("sharded pub/sub needs a Redis Cluster client")
	}
	var failed []string
	var errs []error
	for b, group := range n.byBucket(channels) {
		n.mu.Lock()
		ps := n.subs[b]
		n.mu.Unlock()
		fresh := ps == nil
		if fresh {
			owner, err := n.slotOwner(ctx, cc, history.Slot(group[0]))
			if err != nil {
				failed = append(failed, group...)
				errs = append(errs, err)
				continue
			}
			// Created without channels, so it has no connection yet: the
			// SSUBSCRIBE below makes it, to the owner.
			ps = owner.SSubscribe(ctx)
		}
		if err := ps.SSubscribe(ctx, group...); err != nil {
			if fresh {
				_ = ps.Close()
			}
			failed = append(failed, group...)
			errs = append(errs, err)
			continue
		}
		if fresh {
			n.mu.Lock()
			n.subs[b] = ps
			n.mu.Unlock()
			n.forward(ps)
		}
	}
	return failed, errors.Join(errs...)
}

// unsubscribe undoes subscribe for channels.
func (n *Node) unsubscribe(ctx context.Context, channels []string) error {
	if !n.cfg.Sharded {
		return n.ps.Unsubscribe(ctx, channels...)
	}
	var errs []error
	for b, group := range n.byBucket(channels) {
		n.mu.Lock()
		ps := n.subs[b]
		n.mu.Unlock()
		if ps != nil {
			errs = append(errs, ps.SUnsubscribe(ctx, group...))
		}
	}
	return errors.Join(errs...)
}

// slotOwner returns the cluster client's connection to the master that
// owns slot now, as the cluster itself says (CLUSTER SLOTS): go-redis's own
// routing follows a slot map it reloads lazily, and an SSUBSCRIBE it sends
// to a node that lost the slot is answered MOVED, which it drops.
func (n *Node) slotOwner(ctx context.Context, cc *redis.ClusterClient, slot int) (*redis.Client, error) {
	owner := func(c redis.Cmdable) (string, error) {
		slots, err := c.ClusterSlots(ctx).Result()
		if err != nil {
			return "", err
		}
		for _, s := range slots {
			if slot >= s.Start && slot <= s.End && len(s.Nodes) > 0 {
				return s.Nodes[0].Addr, nil
			}
		}
		return "", fmt.Errorf("no master owns slot %d", slot)
	}
	addr, err := owner(cc)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var node *redis.Client
	_ = cc.ForEachShard(ctx, func(_ context.Context, c *redis.Client) error {
		if c.Options().Addr == addr {
			mu.Lock()
			node = c
			mu.Unlock()
		}
		return nil
	})
	if node == nil {
		cc.ReloadState(ctx)
		return nil, fmt.Errorf("slot %d's master %s is not in the client's slot map yet", slot, addr)
	}
	// Right after a failover some nodes still name the old master, which,
	// now a replica, would take the SSUBSCRIBE and never deliver: the
	// owner must name itself.
	if self, err := owner(node); err != nil || self != addr {
		return nil, fmt.Errorf("slot %d: %s does not own it (it names %q, %v); the cluster has not settled yet", slot, addr, self, err)
	}
	return node, nil
}

func (n *Node) byBucket(channels []string) map[int][]string {
	out := map[int][]string{}
	for _, c := range channels {
		if r, ok := n.roomOf(c); ok {
			b := history.Bucket(r)
			out[b] = append(out[b], c)
		}
	}
	return out
}

// moved handles an "sunsubscribe" nobody asked for, from subscription ps:
// the channel's slot has a new owner. The bucket's subscription goes, and
// its channels are subscribed again, at the owner the reloaded slot map
// names (syncSubscriptions); live() then fills each room's gap.
func (n *Node) moved(ps *redis.PubSub, channel string) {
	r, ok := n.roomOf(channel)
	if !ok {
		return
	}
	n.log.Info("redis moved a room bucket's slot; subscribing again at its new owner", "bucket", history.Bucket(r), "room", r)
	n.resetBucket(history.Bucket(r), ps)
}

// resetBucket drops bucket b's subscription, if it is still ps (any when
// ps is nil), forgets its channels so that syncSubscriptions sends them
// again on a new one, and has go-redis reload the slot map first.
func (n *Node) resetBucket(b int, ps *redis.PubSub) {
	n.mu.Lock()
	cur := n.subs[b]
	if cur == nil || ps != nil && cur != ps {
		n.mu.Unlock()
		return // already replaced
	}
	delete(n.subs, b)
	delete(n.stuck, b)
	for c := range n.subscribed {
		if cr, ok := n.roomOf(c); ok && history.Bucket(cr) == b {
			delete(n.subscribed, c)
		}
	}
	n.mu.Unlock()
	_ = cur.Close()
	if cc, ok := n.cfg.Client.(*redis.ClusterClient); ok {
		cc.ReloadState(context.Background()) // lazy: the next command that routes waits for it
	}
	n.poke()
}

// stuckAfter is how many of retryRooms' ticks (a second apart) a bucket
// may wait for its SSUBSCRIBE to be confirmed before it is subscribed
// again from scratch. An SSUBSCRIBE sent to a node that does not own the
// slot (go-redis routed it by a slot map not yet reloaded after a
// failover) gets MOVED, which go-redis reads and drops: no confirmation
// ever comes.
const stuckAfter = 2

// retryStuck resubscribes the buckets whose SSUBSCRIBE has waited for a
// confirmation stuckAfter ticks in a row.
func (n *Node) retryStuck() {
	if !n.cfg.Sharded {
		return
	}
	waiting := map[int]bool{}
	n.mu.Lock()
	for c, s := range n.subscribed {
		if r, ok := n.roomOf(c); ok && s == subSent {
			waiting[history.Bucket(r)] = true
		}
	}
	var reset []int
	for b := range n.stuck {
		if !waiting[b] {
			delete(n.stuck, b)
		}
	}
	for b := range waiting {
		if n.stuck[b]++; n.stuck[b] > stuckAfter {
			reset = append(reset, b)
		}
	}
	subs := make(map[int]*redis.PubSub, len(n.subs))
	for b, ps := range n.subs {
		subs[b] = ps
	}
	n.mu.Unlock()
	for _, b := range reset {
		n.log.Info("a room bucket's subscription was not confirmed; subscribing again", "bucket", b)
		n.resetBucket(b, nil)
	}
	// A master that died sends no sunsubscribe: go-redis would redial it
	// for ever. A failed ping (a dead connection, a refused redial) makes
	// the bucket subscribe again, at the master the cluster names once it
	// has promoted a replica. Not tested here: the harness fails masters
	// over, it does not kill them.
	for b, ps := range subs {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := ps.Ping(ctx)
		cancel()
		if err != nil {
			n.log.Warn("a room bucket's subscription is down; subscribing again", "bucket", b, "err", err)
			n.resetBucket(b, ps)
		}
	}
}
