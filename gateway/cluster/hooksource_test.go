package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/gateway/backend"
	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hook"
	"github.com/chatgw/gateway/internal/redistest"
)

// testLease is short, so that a takeover after a lease expires fits in a
// test; renewals are every testLease/3.
const testLease = 600 * time.Millisecond

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// hookNode is one gateway node of a test cluster: its Node, HookSource and
// hooks, as the gateway wires them in cluster mode.
type hookNode struct {
	id  string
	c   *redis.Client // the Node's client: closing it is the node's crash, as far as Redis can tell
	n   *Node
	src *HookSource
	h   *hook.Hooks
}

// close stops the node's hooks, then its HookSource (releasing the lease),
// in the gateway's order; the Node itself is closed when the test ends.
func (hn *hookNode) close() {
	hn.h.Close()
	_ = hn.src.Close()
}

// hookCalls is the application's message endpoint, a real HTTP server
// shared by the nodes, each calling it with ?node=<id>. It keeps every
// call; gate, when set, may hold a call's answer.
type hookCalls struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []hookCall
	gate  func(node string) // called before answering, outside mu
}

type hookCall struct {
	node string
	msgs []hook.Message
}

func newHookCalls(t *testing.T) *hookCalls {
	hc := &hookCalls{}
	hc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Events []hook.Message `json:"events"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &b); err != nil {
			t.Errorf("body %q: %v", body, err)
		}
		node := r.URL.Query().Get("node")
		hc.mu.Lock()
		hc.calls = append(hc.calls, hookCall{node, b.Events})
		gate := hc.gate
		hc.mu.Unlock()
		if gate != nil {
			gate(node)
		}
	}))
	t.Cleanup(hc.srv.Close)
	return hc
}

// seen counts the deliveries of each room/seq, and the events each node
// sent.
func (hc *hookCalls) seen() (count map[string]int, by map[string]int, total int) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	count, by = map[string]int{}, map[string]int{}
	for _, c := range hc.calls {
		for _, m := range c.msgs {
			count[fmt.Sprintf("%s/%d", m.Room, m.Seq)]++
			by[c.node]++
			total++
		}
	}
	return count, by, total
}

// startHookCluster starts k nodes on one Redis, each with a HookSource and
// hooks calling hc. Rescan is hook.Config.Rescan (0: only at takeover).
func startHookCluster(t *testing.T, k int, hc *hookCalls, rescan time.Duration) ([]*hookNode, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	var nodes []*hookNode
	for i := range k {
		hn := &hookNode{id: fmt.Sprint("n", i+1)}
		c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		hn.c = c
		hn.n = New(Config{Client: c, NodeID: hn.id, Size: 1000, PresenceRefresh: time.Hour, Log: quiet}, newRecorder())
		t.Cleanup(func() { _ = hn.n.Close(); _ = c.Close() })
		for deadline := time.Now().Add(5 * time.Second); !hn.n.Ready(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("node never ready")
			}
		}
		hn.src = NewHookSource(hn.n, HookOptions{Lease: testLease})
		h, err := hook.New(hook.Config{
			URL: hc.srv.URL + "?node=" + hn.id, Events: hook.EventsOf(hook.EventMessage),
			BatchMax: 20, BatchWait: 5 * time.Millisecond, Timeout: 10 * time.Second,
			RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
			Rescan: rescan, Logger: quiet,
		}, hn.src, nil)
		if err != nil {
			t.Fatal(err)
		}
		hn.h = h
		t.Cleanup(hn.close) // before the Node's: cleanups run last first
		nodes = append(nodes, hn)
	}
	return nodes, admin
}

// publish stores count messages in room through hn's Node, and tells hn's
// hooks with Stored, as the gateway does once a publish is acked.
func publish(t *testing.T, hn *hookNode, room string, count int) {
	t.Helper()
	for _, seq := range store(t, hn.n, room, count) {
		hn.h.Stored(room, seq)
	}
}

// store stores count messages in room through n, and returns their seqs.
func store(t *testing.T, n *Node, room string, count int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := range count {
		ch := make(chan backend.Ack, 1)
		n.Publish(room, "u", "", encoder(room, i), func(a backend.Ack, err error) {
			if err != nil {
				t.Errorf("publish: %v", err)
			}
			ch <- a
		})
		seqs = append(seqs, (<-ch).Seq)
	}
	return seqs
}

// leaderOf is the node holding the lease ("" if none).
func leaderOf(t *testing.T, admin *redis.Client) string {
	v, err := admin.Get(context.Background(), hookLeaderKey).Result()
	if err == redis.Nil {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(v, "/")
	return id
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// cursorOf is room's saved cursor, "epoch|seq" ("" if none).
func cursorOf(t *testing.T, admin *redis.Client, room string) string {
	v, err := admin.HGet(context.Background(), hookCursorKey, room).Result()
	if err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	return v
}

func epochOf(t *testing.T, admin *redis.Client, room string) string {
	v, err := admin.Get(context.Background(), history.RoomKey(room)+"e").Result()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkOnce fails unless every seq 1..n of every room in want was
// delivered exactly once.
func checkOnce(t *testing.T, count map[string]int, want map[string]int) {
	t.Helper()
	n := 0
	for room, latest := range want {
		for seq := 1; seq <= latest; seq++ {
			if c := count[fmt.Sprintf("%s/%d", room, seq)]; c != 1 {
				t.Errorf("%s/%d delivered %d times", room, seq, c)
			}
		}
		n += latest
	}
	if len(count) != n {
		t.Errorf("%d distinct messages delivered, want %d", len(count), n)
	}
}

// TestHookSourceOncePerCluster: three nodes share one Redis and all run
// their hooks; messages are published to four rooms through every node.
// Each is notified exactly once, all by the node holding the lease: the
// others' Stored calls are ignored, and the messages they stored reach the
// leader through Pending's scan.
func TestHookSourceOncePerCluster(t *testing.T) {
	hc := newHookCalls(t)
	nodes, admin := startHookCluster(t, 3, hc, 50*time.Millisecond)
	waitFor(t, 5*time.Second, "a leader", func() bool { return leaderOf(t, admin) != "" })

	want := map[string]int{"a": 30, "b": 30, "c": 30, "@d": 30}
	var wg sync.WaitGroup
	for _, hn := range nodes {
		wg.Go(func() {
			for range 10 { // concurrently: every room gets messages from every node
				for room := range want {
					publish(t, hn, room, 1)
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, 10*time.Second, "every message", func() bool { _, _, n := hc.seen(); return n >= 120 })
	time.Sleep(300 * time.Millisecond) // six rescans: any duplicate is sent by now
	count, by, _ := hc.seen()
	checkOnce(t, count, want)
	if len(by) != 1 || by[leaderOf(t, admin)] != 120 {
		t.Errorf("events by node %v; the lease is %s's", by, leaderOf(t, admin))
	}
	for room, n := range want {
		if got, w := cursorOf(t, admin, room), fmt.Sprintf("%s|%d", epochOf(t, admin, room), n); got != w {
			t.Errorf("cursor of %s %q, want %q", room, got, w)
		}
	}
}

// byID is the node of nodes named id.
func byID(nodes []*hookNode, id string) *hookNode {
	for _, hn := range nodes {
		if hn.id == id {
			return hn
		}
	}
	return nil
}

// TestHookSourceTakeover: the leader stops cleanly (hooks, then
// HookSource, which releases the lease): another node takes over within a
// renewal period, well before the lease would have expired, and notifies
// what was stored meanwhile. Then the new leader crashes (its Redis client
// is gone: renewals fail, nothing is released): the last node takes over
// once the lease expires. Every message is notified exactly once.
func TestHookSourceTakeover(t *testing.T) {
	hc := newHookCalls(t)
	nodes, admin := startHookCluster(t, 3, hc, 50*time.Millisecond)
	waitFor(t, 5*time.Second, "a leader", func() bool { return leaderOf(t, admin) != "" })
	round := func(from []*hookNode, total int) {
		for _, hn := range from {
			publish(t, hn, "a", 10/len(from))
			publish(t, hn, "b", 10/len(from))
		}
		for room, n := range map[string]int{"a": 10 % len(from), "b": 10 % len(from)} {
			publish(t, from[0], room, n)
		}
		waitFor(t, 10*time.Second, fmt.Sprint(total, " messages"), func() bool { _, _, n := hc.seen(); return n >= total })
		// And their cursors saved: nothing is in flight when a node
		// stops (that case is TestHookSourceHandoverInFlight's).
		for _, room := range []string{"a", "b"} {
			want := fmt.Sprintf("%s|%d", epochOf(t, admin, room), total/2)
			waitFor(t, 5*time.Second, "the cursor of "+room, func() bool { return cursorOf(t, admin, room) == want })
		}
	}
	round(nodes, 20)

	first := byID(nodes, leaderOf(t, admin))
	first.close()
	stopped := time.Now()
	if leaderOf(t, admin) == first.id {
		t.Fatal("the lease outlived its holder's Close")
	}
	rest := slices.DeleteFunc(slices.Clone(nodes), func(hn *hookNode) bool { return hn == first })
	round(rest, 40)
	second := byID(rest, leaderOf(t, admin))
	if second == nil {
		t.Fatalf("lease %q after %s stopped", leaderOf(t, admin), first.id)
	}
	if d := time.Since(stopped); d >= testLease {
		t.Errorf("takeover after a release took %v, lease %v", d, testLease)
	}

	_ = second.c.Close() // a crash: no release
	crashed := time.Now()
	last := slices.DeleteFunc(rest, func(hn *hookNode) bool { return hn == second })
	round(last, 60)
	if leaderOf(t, admin) != last[0].id {
		t.Errorf("lease %q after the crash, want %s", leaderOf(t, admin), last[0].id)
	}
	// The crashed node renewed at most Lease/3 before: the lease lasted at
	// least 2/3 of it more.
	if d := time.Since(crashed); d < testLease/2 {
		t.Errorf("takeover after a crash took %v: the lease (%v) cannot have expired", d, testLease)
	}
	time.Sleep(300 * time.Millisecond) // six rescans: any duplicate is sent by now
	count, by, _ := hc.seen()
	checkOnce(t, count, map[string]int{"a": 30, "b": 30})
	if by[first.id] != 20 || by[second.id] != 20 || by[last[0].id] != 20 {
		t.Errorf("events by node %v, want 20 from each of %s, %s, %s in turn", by, first.id, second.id, last[0].id)
	}
}

// TestHookSourceHandoverInFlight: the leader's lease ends (here its
// HookSource is closed; renewals failing past the lease do the same) while
// its batch is in flight. The next leader sends that batch again, and
// more; when the old leader's batch is answered 2xx at last, its cursor
// write is refused, since the lease is not its any more: the cursor stays
// where the new leader put it. The one repetition a handover makes is that
// batch.
func TestHookSourceHandoverInFlight(t *testing.T) {
	hc := newHookCalls(t)
	nodes, admin := startHookCluster(t, 2, hc, 50*time.Millisecond)
	waitFor(t, 5*time.Second, "a leader", func() bool { return leaderOf(t, admin) != "" })
	old := byID(nodes, leaderOf(t, admin))
	next := nodes[0]
	if next == old {
		next = nodes[1]
	}
	held, release := make(chan struct{}, 1), make(chan struct{})
	answered := make(chan struct{})
	hc.gate = func(node string) {
		if node == old.id {
			held <- struct{}{}
			<-release
			defer close(answered)
		}
	}
	// Stored once all ten are stored: the first read finds them all, so
	// that they make one batch.
	for _, seq := range store(t, old.n, "r", 10) {
		old.h.Stored("r", seq)
	}
	<-held
	_ = old.src.Close()
	waitFor(t, 5*time.Second, "the new leader", func() bool { return leaderOf(t, admin) == next.id })
	publish(t, next, "r", 5)
	want := epochOf(t, admin, "r") + "|15"
	waitFor(t, 5*time.Second, "the new leader's cursor", func() bool { return cursorOf(t, admin, "r") == want })

	close(release)
	<-answered
	old.h.Close() // returns once its sender has tried to save the cursor
	if got := cursorOf(t, admin, "r"); got != want {
		t.Errorf("cursor %q after the old leader's batch was answered, want %q", got, want)
	}
	count, by, _ := hc.seen()
	for seq := 1; seq <= 15; seq++ {
		want := 1
		if seq <= 10 {
			want = 2 // the batch in flight, then the new leader's
		}
		if c := count[fmt.Sprint("r/", seq)]; c != want {
			t.Errorf("r/%d delivered %d times, want %d", seq, c, want)
		}
	}
	if by[old.id] != 10 || by[next.id] != 15 {
		t.Errorf("events by node %v", by)
	}
}

// TestHookSourceNewEpoch: a room whose history was lost (its keys gone, as
// when they expire or Redis loses them) and started over: its seqs begin
// again at 1, in a new epoch, and the saved cursor, of the old epoch, must
// not hide them. Rescan is off, so that no scan drops the old cursor
// first: the cursor's epoch is what saves them.
func TestHookSourceNewEpoch(t *testing.T) {
	hc := newHookCalls(t)
	nodes, admin := startHookCluster(t, 1, hc, 0)
	waitFor(t, 5*time.Second, "a leader", func() bool { return leaderOf(t, admin) != "" })
	publish(t, nodes[0], "r", 5)
	old := epochOf(t, admin, "r")
	waitFor(t, 5*time.Second, "the first cursor", func() bool { return cursorOf(t, admin, "r") == old+"|5" })

	rk := history.RoomKey("r")
	if err := admin.Del(context.Background(), rk+"s", rk+"h", rk+"e").Err(); err != nil {
		t.Fatal(err)
	}
	publish(t, nodes[0], "r", 3)
	if epochOf(t, admin, "r") == old {
		t.Fatal("the room kept its epoch")
	}
	waitFor(t, 5*time.Second, "the new epoch's messages", func() bool { _, _, n := hc.seen(); return n >= 8 })
	count, _, _ := hc.seen()
	for seq := 1; seq <= 5; seq++ {
		want := 1
		if seq <= 3 {
			want = 2 // once per epoch
		}
		if c := count[fmt.Sprint("r/", seq)]; c != want {
			t.Errorf("r/%d delivered %d times, want %d", seq, c, want)
		}
	}
	// The cursor is saved after the hook's answer, so it may follow the
	// deliveries counted above by a moment (CI, under -race).
	want := epochOf(t, admin, "r") + "|3"
	waitFor(t, 5*time.Second, "the cursor at the new epoch's last message", func() bool { return cursorOf(t, admin, "r") == want })
}

// TestHookSourcePending: Pending lists the rooms behind their cursor
// (none saved, or behind), whoever wrote them, and nothing that only
// looks like a room's seq key; it drops the cursors of rooms gone. Only
// the lease's holder may save a cursor. No hooks: the test calls the
// Source as the sender would.
func TestHookSourcePending(t *testing.T) {
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	var srcs []*HookSource
	var nodes []*Node
	for i := range 2 {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		n := New(Config{Client: c, NodeID: fmt.Sprint("n", i+1), Size: 1000, PresenceRefresh: time.Hour, Log: quiet}, newRecorder())
		t.Cleanup(func() { _ = n.Close(); _ = c.Close() })
		waitFor(t, 5*time.Second, "node ready", n.Ready)
		s := NewHookSource(n, HookOptions{Lease: testLease})
		t.Cleanup(func() { _ = s.Close() })
		srcs, nodes = append(srcs, s), append(nodes, n)
	}
	waitFor(t, 5*time.Second, "a leader", func() bool { return srcs[0].Leader() || srcs[1].Leader() })
	lead, follow := srcs[0], srcs[1]
	if !lead.Leader() {
		lead, follow = follow, lead
	}
	if follow.Leader() {
		t.Fatal("both lead")
	}

	store(t, nodes[0], "a", 3)
	store(t, nodes[1], "b", 2)
	store(t, nodes[1], "c", 1)
	ctx := context.Background()
	// A key whose name ends like a seq key's (a user's idempotency key
	// may), holding a number: not a room.
	if err := admin.Set(ctx, "gw:{u:bob}:k:x}:s", "7", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := lead.SetCursor("a", 3); err != nil {
		t.Fatal(err)
	}
	if err := lead.SetCursor("b", 1); err != nil {
		t.Fatal(err)
	}
	if err := follow.SetCursor("c", 1); err != errNotLeader {
		t.Errorf("SetCursor by a node without the lease: %v", err)
	}
	pending := func() string {
		t.Helper()
		rooms, err := lead.Pending()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(rooms)
	}
	if got := pending(); got != "[b c]" {
		t.Errorf("pending %s, want [b c]", got)
	}
	if c, err := lead.Cursor("a"); c != 3 || err != nil {
		t.Errorf("cursor of a %d %v", c, err)
	}

	rk := history.RoomKey("a")
	if err := admin.Del(ctx, rk+"s", rk+"h", rk+"e").Err(); err != nil {
		t.Fatal(err)
	}
	if got := pending(); got != "[b c]" {
		t.Errorf("pending %s after a was lost, want [b c]", got)
	}
	if v := cursorOf(t, admin, "a"); v != "" {
		t.Errorf("the cursor of a room gone is still there: %q", v)
	}
	if v := cursorOf(t, admin, "b"); v == "" {
		t.Error("the cursor of b was dropped")
	}

	// A release hands the lease over within a renewal period.
	released := time.Now()
	_ = lead.Close()
	if v, _ := admin.Get(ctx, hookLeaderKey).Result(); v != "" {
		t.Errorf("lease %q after its holder's Close", v)
	}
	waitFor(t, 5*time.Second, "the other node to lead", follow.Leader)
	if d := time.Since(released); d >= testLease {
		t.Errorf("takeover after a release took %v", d)
	}
	if lead.Leader() {
		t.Error("a closed HookSource leads")
	}
}

// TestHookSourceNewTermReportedOnce: a lease lost and taken again (here:
// deleted under the holder, which takes it back, having no rival) is a new
// term: Leader reports false once, so that the hooks forget what they knew,
// then true; and a cursor write in the old term is refused.
func TestHookSourceNewTermReportedOnce(t *testing.T) {
	hc := newHookCalls(t)
	nodes, admin := startHookCluster(t, 1, hc, 0)
	nodes[0].close() // the test plays the sender
	s := NewHookSource(nodes[0].n, HookOptions{Lease: testLease})
	t.Cleanup(func() { _ = s.Close() })
	waitFor(t, 5*time.Second, "the lease", s.Leader)
	store(t, nodes[0].n, "r", 1)
	ctx := context.Background()
	term, _ := admin.Get(ctx, hookLeaderKey).Result()
	if err := admin.Del(ctx, hookLeaderKey).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a new term", func() bool {
		v, _ := admin.Get(ctx, hookLeaderKey).Result()
		return v != "" && v != term
	})
	waitFor(t, 5*time.Second, "the renewal", func() bool { return s.term.Load() != nil && *s.term.Load() != term })
	if err := s.SetCursor("r", 1); err != errNotLeader {
		t.Errorf("SetCursor in the old term: %v", err)
	}
	if s.Leader() {
		t.Error("Leader reported true across a new term")
	}
	if !s.Leader() {
		t.Error("Leader reported false twice")
	}
	if err := s.SetCursor("r", 1); err != nil {
		t.Errorf("SetCursor in the new term: %v", err)
	}
}

// TestHookSourceSlowRedis: a holder whose renewals get no answer (Redis
// slow, or the network) stops reporting Leader from Lease/4 before the
// lease could have expired, though no renewal failed yet: by the time
// another node may take it, it sends nothing. Its client here has no
// deadline of its own (no ContextTimeoutEnabled), so only the age of the
// last renewal tells.
func TestHookSourceSlowRedis(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.NewProxy(t, srv.Addr())
	c := redis.NewClient(&redis.Options{Addr: proxy.Addr()})
	n := New(Config{Client: c, NodeID: "n1", Size: 100, PresenceRefresh: time.Hour, Log: quiet}, newRecorder())
	t.Cleanup(func() { _ = n.Close(); _ = c.Close() })
	waitFor(t, 5*time.Second, "node ready", n.Ready)
	s := NewHookSource(n, HookOptions{Lease: testLease})
	t.Cleanup(func() { _ = s.Close() })
	waitFor(t, 5*time.Second, "the lease", s.Leader)

	proxy.SetDelay(2 * testLease)
	// The last renewal answered was sent before this: the lease in Redis
	// cannot expire before testLease from now.
	waitFor(t, testLease, "Leader to turn false", func() bool { return !s.Leader() })
	proxy.SetDelay(0)
	waitFor(t, 5*time.Second, "the lease again", s.Leader)
}
