package gateway_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/internal/redistest"
)

var (
	clusterLong = flag.Bool("cluster.long", false, "run the Redis Cluster resharding and failover test with more traffic")
	clusterKill = flag.Bool("cluster.kill", false, "run TestClusterMasterKilled, a known failure (README, Scaling out)")
)

// TestClusterReshardAndFailover runs two nodes on a Redis Cluster of three
// masters with a replica each, with sharded pub/sub and with classic.
// While a sender on one node sends to four rooms, the slot of one room
// moves to another master (keys and all, as
// redis-cli's resharding does), then the master of another room fails over
// to its replica (CLUSTER FAILOVER, which loses no acknowledged write).
// A send that fails meanwhile is retried with its idempotency key, as a
// client would. Every member, on either node, must then have every acked
// message of every room once, in seq order, with the seq its ack gave. In
// the sharded mode both changes end the nodes' subscriptions of those
// rooms' slots (Redis sends sunsubscribe), which must follow them.
func TestClusterReshardAndFailover(t *testing.T) {
	onePass(t)
	for _, mode := range []string{"sharded", "classic"} {
		t.Run(mode, func(t *testing.T) { reshardAndFailover(t, mode) })
	}
}

func reshardAndFailover(t *testing.T, mode string) {
	per := 60 // messages per room
	if *clusterLong {
		per = 600
	}
	keys := history.Layout{Sharded: mode == "sharded"}
	rc := redistest.StartCluster(t, 3, 1)
	nodes := startClusterPubSub(t, 2, rc.URL(), mode)
	rooms := []string{"alpha", "beta", "gamma", "delta"}
	sender := nodes[0].dial(t, "sender")
	members := []*client{nodes[0].dial(t, "m0"), nodes[1].dial(t, "m1")}
	for _, r := range rooms {
		sender.Join(r)
		for _, m := range members {
			m.Join(r)
		}
	}

	// The sender runs on its own goroutine, so that the cluster changes
	// below happen while it sends; it reports through acked and failed.
	type ackd struct {
		seq  uint64
		text string
	}
	acked := make(map[string][]ackd) // by room, in send order
	var (
		sent     atomic.Int64
		retries  atomic.Int64
		failed   error
		senderWG sync.WaitGroup
	)
	senderWG.Add(1)
	go func() {
		defer senderWG.Done()
		for i := 0; i < per; i++ {
			for _, r := range rooms {
				text := fmt.Sprintf("%s-%d", r, i)
				req := map[string]any{"type": "send", "id": text, "room": r, "text": text, "key": text}
				seq, n, err := sendUntilAcked(sender, req, 20*time.Second)
				retries.Add(int64(n))
				if err != nil {
					failed = fmt.Errorf("%s: %w", text, err)
					return
				}
				acked[r] = append(acked[r], ackd{seq, text})
				sent.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	total := int64(per * len(rooms))
	waitSent := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); sent.Load() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the sender stalled at %d of %d sends", sent.Load(), total)
			}
		}
	}

	// Reshard: alpha's slot moves to another master.
	waitSent(total / 4)
	slot := rc.SlotOf(keys.RoomKey("alpha") + "s")
	from := rc.MasterOf(slot)
	to := ""
	for _, m := range rc.MasterAddrs() {
		if m != from {
			to = m
			break
		}
	}
	rc.MigrateSlot(t, slot, to)
	if got := rc.MasterOf(slot); got != to {
		t.Fatalf("alpha's slot %d is on %s after the migration, want %s", slot, got, to)
	}

	// Fail over the master that holds beta.
	waitSent(total / 2)
	betaMaster := rc.MasterOf(rc.SlotOf(keys.RoomKey("beta") + "s"))
	promoted := rc.Failover(t, betaMaster)
	t.Logf("alpha's slot %d moved %s -> %s; beta's master %s failed over to %s", slot, from, to, betaMaster, promoted)

	senderWG.Wait()
	if failed != nil {
		t.Fatalf("sender: %v (after %d acked sends)", failed, sent.Load())
	}
	t.Logf("%d sends acked, %d retried", sent.Load(), retries.Load())

	for _, r := range rooms {
		// Acks carry the seqs 1..per in order: a retry that had been
		// stored is recognised (same seq), and nothing is stored twice.
		for i, a := range acked[r] {
			if a.seq != uint64(i+1) {
				t.Fatalf("room %s: send %d (%s) acked with seq %d, want %d", r, i, a.text, a.seq, i+1)
			}
		}
	}
	for _, m := range members {
		got := make(map[string][]frame)
		for n := 0; n < per*len(rooms); n++ {
			var f frame
			select {
			case f = <-m.Frames:
			case <-time.After(5 * time.Second):
				counts := map[string]int{}
				for r, fs := range got {
					counts[r] = len(fs)
				}
				t.Fatalf("%s: %d of %d messages, by room %v", m.User, n, per*len(rooms), counts)
			}
			if f.Str("type") != "message" {
				n--
				continue
			}
			got[f.Str("room")] = append(got[f.Str("room")], f)
		}
		m.Quiet("message", 300*time.Millisecond)
		for _, r := range rooms {
			for i, f := range got[r] {
				want := acked[r][i]
				if f.Num("seq") != want.seq || f.Str("text") != want.text {
					t.Fatalf("%s, room %s: message %d is seq %d %q, want seq %d %q", m.User, r, i, f.Num("seq"), f.Str("text"), want.seq, want.text)
				}
			}
		}
	}
}

// sendUntilAcked sends req until it is acked, again with the same key
// after an error reply or no reply, as a client does. It returns the ack's
// seq and how many times it sent again. It does not fail the test (it runs
// on a goroutine of its own): frames other than the reply are dropped.
func sendUntilAcked(c *client, req map[string]any, within time.Duration) (uint64, int, error) {
	b, _ := json.Marshal(req)
	id := req["id"].(string)
	deadline := time.Now().Add(within)
	var last error
	for again := 0; time.Now().Before(deadline); again++ {
		if err := c.WS.WriteMessage(websocket.TextMessage, b); err != nil {
			return 0, again, err
		}
		wait := time.After(3 * time.Second)
	reply:
		for {
			select {
			case f, ok := <-c.Frames:
				if !ok {
					return 0, again, errors.New("connection closed")
				}
				if f.Str("id") != id {
					continue
				}
				if f.Str("type") == "ack" {
					return f.Num("seq"), again, nil
				}
				last = fmt.Errorf("reply %v", f)
				time.Sleep(50 * time.Millisecond)
				break reply
			case <-wait:
				last = errors.New("no reply within 3s")
				break reply
			}
		}
	}
	return 0, 0, fmt.Errorf("not acked within %v: %w", within, last)
}

// TestClusterMasterKilled: with sharded pub/sub, a master killed outright
// sends no sunsubscribe; the nodes' subscriptions of its rooms must find
// the replica the cluster promotes (a failed ping subscribes again) and
// deliver again, without the members doing anything. What the dead master
// acked and had not replicated may be lost, so the test checks the
// messages sent once the cluster has recovered: each room's last one
// reaches both members.
//
// It fails about two runs in three: one node's subscriptions of the dead
// master's rooms deliver nothing again, with its subscriber goroutine idle.
// Not yet understood, so it runs only with -cluster.kill, as the
// reproducer of a known failure (README, "Scaling out").
func TestClusterMasterKilled(t *testing.T) {
	onePass(t)
	if !*clusterKill {
		t.Skip("a known failure: run with -cluster.kill")
	}
	rc := redistest.StartCluster(t, 3, 1)
	nodes := startClusterPubSub(t, 2, rc.URL(), "sharded")
	rooms := []string{"alpha", "beta", "gamma", "delta"}
	sender := nodes[0].dial(t, "sender")
	members := []*client{nodes[0].dial(t, "m0"), nodes[1].dial(t, "m1")}
	for _, r := range rooms {
		sender.Join(r)
		for _, m := range members {
			m.Join(r)
		}
	}
	keys := history.Layout{Sharded: true}
	victim := rc.MasterOf(rc.SlotOf(keys.RoomKey("beta") + "s"))
	promoted := rc.Kill(t, victim)
	t.Logf("killed beta's master %s; %s promoted", victim, promoted)
	for _, r := range rooms {
		text := r + "-after"
		if _, _, err := sendUntilAcked(sender, map[string]any{"type": "send", "id": text, "room": r, "text": text, "key": text}, 20*time.Second); err != nil {
			t.Fatalf("%s: %v", text, err)
		}
	}
	for _, m := range members {
		m.Timeout = 15 * time.Second
		for _, r := range rooms {
			m.WaitFor("message", func(f frame) bool { return f.Str("room") == r && f.Str("text") == r+"-after" })
		}
	}
}
