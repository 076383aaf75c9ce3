package gateway_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/internal/redistest"
)

// Cluster tests: several nodes in this process, each a full gateway with
// its own listeners, linked by a real redis-server.

func startCluster(t *testing.T, nodes int, redisURL string) []*node {
	t.Helper()
	return startClusterPubSub(t, nodes, redisURL, "auto")
}

// startClusterPubSub is startCluster with --redis-pubsub set to mode.
func startClusterPubSub(t *testing.T, nodes int, redisURL, mode string) []*node {
	t.Helper()
	var out []*node
	for i := 0; i < nodes; i++ {
		out = append(out, startNode(t, func(c *gateway.Config) {
			c.RedisURL = redisURL
			c.RedisPubSub = mode
			c.NodeID = fmt.Sprintf("node-%d", i)
			c.Rate, c.Burst = 10000, 10000
			c.APIKey = "k"
			c.PresenceRefresh = 200 * time.Millisecond // the refresh and sweep run during the tests
		}))
	}
	for _, n := range out {
		waitReady(t, n, 200)
	}
	return out
}

// onePass skips a test that brings its own redis-server and nodes in the
// -backend=redis pass: it would run exactly as in the memory pass.
func onePass(t *testing.T) {
	if !memoryStore(t) {
		t.Skip("brings its own Redis: runs in the -backend=memory pass")
	}
}

// waitReady waits until /readyz answers want.
func waitReady(t *testing.T, n *node, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + n.srv.AdminAddr() + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz of %s never answered %d", n.cfg.NodeID, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestClusterRoomOrderAcrossNodes(t *testing.T) {
	onePass(t)
	const each = 40
	r := redistest.Start(t)
	nodes := startCluster(t, 3, r.URL())
	var members []*client
	for i, n := range nodes {
		c := n.dial(t, fmt.Sprintf("u%d", i))
		c.Join("general")
		members = append(members, c)
	}
	// Every member sends at once, on its own node.
	var wg sync.WaitGroup
	for _, c := range members {
		wg.Add(1)
		go func(c *client) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				b := fmt.Sprintf(`{"type":"send","room":"general","text":"%s-%d"}`, c.User, i)
				if err := c.WS.WriteMessage(websocket.TextMessage, []byte(b)); err != nil {
					t.Error(err)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	total := uint64(each * len(members))
	var first []frame
	for i, c := range members {
		got := collect(t, c, "general", 1, total)
		if i == 0 {
			first = got
			continue
		}
		for j := range got {
			if got[j].Str("text") != first[j].Str("text") || got[j].Str("from") != first[j].Str("from") {
				t.Fatalf("seq %d is %q from %s on node %d but %q from %s on node 0", j+1,
					got[j].Str("text"), got[j].Str("from"), i, first[j].Str("text"), first[j].Str("from"))
			}
		}
		c.Quiet("message", 200*time.Millisecond)
	}
}

func TestClusterDMAcrossNodes(t *testing.T) {
	onePass(t)
	r := redistest.Start(t)
	nodes := startCluster(t, 3, r.URL())
	alice, bob, alice2 := nodes[0].dial(t, "alice"), nodes[1].dial(t, "bob"), nodes[2].dial(t, "alice")
	ack := alice.Request(map[string]any{"type": "dm", "id": "d1", "to": "bob", "text": "psst"})
	if ack.Str("type") != "ack" || ack.Str("room") != "@bob" || ack.Num("seq") != 1 {
		t.Fatalf("dm ack %v", ack)
	}
	m := bob.WaitFor("message", func(f frame) bool { return f.Str("room") == "@bob" })
	if m.Str("from") != "alice" || m.Str("to") != "bob" || m.Str("text") != "psst" || m.Num("seq") != 1 {
		t.Fatalf("bob got %v", m)
	}
	// alice's connection on another node sees the copy in her inbox.
	e := alice2.WaitFor("message", func(f frame) bool { return f.Str("room") == "@alice" })
	if e.Str("to") != "bob" || e.Str("text") != "psst" {
		t.Fatalf("alice's other connection got %v", e)
	}
}

func TestClusterResumeOnAnotherNode(t *testing.T) {
	onePass(t)
	r := redistest.Start(t)
	nodes := startCluster(t, 3, r.URL())
	alice, bob := nodes[0].dial(t, "alice"), nodes[1].dial(t, "bob")
	j := alice.Join("general")
	epoch := j.Str("epoch")
	bob.Join("general")
	for i := 1; i <= 5; i++ {
		bob.SendText("general", fmt.Sprint("m", i))
	}
	collect(t, alice, "general", 1, 5)
	_ = alice.WS.Close()
	for i := 6; i <= 8; i++ {
		bob.SendText("general", fmt.Sprint("m", i))
	}
	// alice comes back through another node and resumes after seq 5.
	again := nodes[2].dial(t, "alice")
	j = again.Request(map[string]any{"type": "join", "id": "rj", "room": "general",
		"since": map[string]any{"epoch": epoch, "seq": 5}})
	msgs, _ := j["messages"].([]any)
	if j["recovered"] != true || len(msgs) != 3 || j.Num("seq") != 8 {
		t.Fatalf("resume on another node: %v", j)
	}
	for i, m := range msgs {
		if mm := m.(map[string]any); mm["seq"] != float64(6+i) || mm["text"] != fmt.Sprint("m", 6+i) {
			t.Fatalf("resumed message %d: %v", i, mm)
		}
	}
	bob.SendText("general", "m9")
	if m := again.WaitFor("message", nil); m.Num("seq") != 9 {
		t.Fatalf("after resuming: %v, want seq 9", m)
	}
	again.Quiet("message", 200*time.Millisecond)
}

func TestClusterPresenceAcrossNodes(t *testing.T) {
	onePass(t)
	r := redistest.Start(t)
	nodes := startCluster(t, 3, r.URL())
	alice, bob := nodes[0].dial(t, "alice"), nodes[1].dial(t, "bob")
	list := func(c *client, id string) frame {
		return c.Request(map[string]any{"type": "presence", "id": id, "room": "general"})
	}
	alice.Join("general")
	// Presence is recorded in Redis asynchronously: wait for alice's entry,
	// so that her online event is not sent after bob has joined.
	for i := 0; list(alice, fmt.Sprint("w", i)).Num("total") != 1; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	bob.Join("general")
	p := alice.WaitFor("presence", func(f frame) bool { return f.Str("user") == "bob" })
	if p["online"] != true {
		t.Fatalf("alice saw %v", p)
	}
	if l := list(alice, "p1"); l.Num("total") != 2 {
		t.Fatalf("presence on node 0: %v", l)
	}
	// A second connection of alice, on a third node, is not news.
	alice2 := nodes[2].dial(t, "alice")
	alice2.Join("general")
	bob.Quiet("presence", 300*time.Millisecond)
	// alice leaves on node 0 but is still there on node 2: no news either.
	alice.Request(map[string]any{"type": "leave", "id": "l1", "room": "general"})
	bob.Quiet("presence", 300*time.Millisecond)
	_ = alice2.WS.Close()
	p = bob.WaitFor("presence", func(f frame) bool { return f.Str("user") == "alice" })
	if p["online"] != false {
		t.Fatalf("bob saw %v after alice's last connection went", p)
	}
	if l := list(bob, "p2"); l.Num("total") != 1 {
		t.Fatalf("presence after alice left: %v", l)
	}
	// The server API of any node answers for the whole cluster.
	status, api := apiCall(t, nodes[0], "GET", "/api/rooms/general/presence", "k", nil)
	if users, _ := api["users"].([]any); status != 200 || api.Num("total") != 1 || len(users) != 1 || users[0] != "bob" {
		t.Fatalf("API presence on node 0: %d %v", status, api)
	}
}

// TestClusterRedisRestart: Redis (with an append-only file) restarts while
// a member sends; the nodes go unready and come back, and every message
// that was acknowledged reaches the member on the other node, in order.
func TestClusterRedisRestart(t *testing.T) {
	onePass(t)
	r := redistest.StartPersistent(t)
	nodes := startCluster(t, 2, r.URL())
	sender, member := nodes[0].dial(t, "sender"), nodes[1].dial(t, "member")
	sender.Join("general")
	member.Join("general")
	acked := map[uint64]string{}
	// send sends message i and checks the answer: an ack while Redis is up,
	// unavailable while the nodes say it is down (README "Scaling out").
	send := func(i int, up bool) {
		f := sender.Request(map[string]any{"type": "send", "id": fmt.Sprint("s", i), "room": "general",
			"text": fmt.Sprint("t", i), "key": fmt.Sprint("k", i)})
		switch {
		case up && f.Str("type") == "ack":
			acked[f.Num("seq")] = fmt.Sprint("t", i)
		case !up:
			expectError(t, f, "unavailable")
		default:
			t.Fatalf("send %d with Redis up: %v", i, f)
		}
	}
	for i := 0; i < 10; i++ {
		send(i, true)
	}
	r.Kill()
	for _, n := range nodes {
		waitReady(t, n, 503)
	}
	for i := 10; i < 15; i++ {
		send(i, false) // refused: nothing half-done
	}
	r.Restart()
	for _, n := range nodes {
		waitReady(t, n, 200)
	}
	for i := 15; i < 25; i++ {
		send(i, true)
	}
	if len(acked) < 20 {
		t.Fatalf("only %d sends were acknowledged", len(acked))
	}
	// The member gets every acknowledged message, in seq order, no gap.
	last := uint64(0)
	for len(acked) > 0 {
		m := member.WaitFor("message", nil)
		seq := m.Num("seq")
		if seq != last+1 {
			t.Fatalf("member got seq %d after %d", seq, last)
		}
		if want, ok := acked[seq]; ok {
			if m.Str("text") != want {
				t.Fatalf("seq %d is %q, acknowledged as %q", seq, m.Str("text"), want)
			}
			delete(acked, seq)
		}
		last = seq
	}
}

// TestClusterRedisLostData: a Redis that restarts empty has lost the
// rooms' histories. Members stay connected and get an unsolicited joined
// (no id) with the new epoch, recovered false and the room's seq, and the
// seq order continues from it (docs/protocol.md, "History lost while connected").
func TestClusterRedisLostData(t *testing.T) {
	onePass(t)
	r := redistest.Start(t)
	nodes := startCluster(t, 2, r.URL())
	sender, member := nodes[0].dial(t, "sender"), nodes[1].dial(t, "member")
	sender.Join("general")
	j := member.Join("general")
	for i := 1; i <= 3; i++ {
		sender.SendText("general", fmt.Sprint("m", i))
	}
	collect(t, member, "general", 1, 3)
	r.Restart() // empty: no persistence
	for _, c := range []*client{member, sender} {
		rj := c.WaitFor("joined", func(f frame) bool { return f.Str("room") == "general" })
		if _, hasID := rj["id"]; hasID || rj["recovered"] != false || rj.Str("epoch") == j.Str("epoch") || rj.Num("seq") != 0 {
			t.Fatalf("%s: after Redis lost the room: %v (epoch before %s)", c.User, rj, j.Str("epoch"))
		}
	}
	for _, n := range nodes {
		waitReady(t, n, 200)
	}
	// The room goes on from seq 1 of its new life, for both. In cluster
	// mode the sender's own message may come before or after its ack (one
	// from the subscription, one from the publisher), so neither is
	// waited for first.
	sender.Send(map[string]any{"type": "send", "id": "after", "room": "general", "text": "after"})
	for _, c := range []*client{member, sender} {
		if m := c.WaitFor("message", nil); m.Num("seq") != 1 || m.Str("text") != "after" {
			t.Fatalf("%s: first message of the new life: %v", c.User, m)
		}
	}
	var ack frame
	for _, f := range sender.Seen {
		if f.Str("type") == "ack" && f.Str("id") == "after" {
			ack = f
		}
	}
	if ack == nil {
		ack = sender.WaitFor("ack", func(f frame) bool { return f.Str("id") == "after" })
	}
	if ack.Num("seq") != 1 {
		t.Fatalf("ack of the first message of the new life: %v", ack)
	}
}

// TestClusterThroughSentinel: --redis-url with ?master_name= finds the
// master through Redis Sentinel.
func TestClusterThroughSentinel(t *testing.T) {
	onePass(t)
	r := redistest.Start(t)
	sentinel := redistest.Sentinel(t, r)
	nodes := startCluster(t, 2, "redis://"+sentinel+"/0?master_name=mymaster")
	a, b := nodes[0].dial(t, "a"), nodes[1].dial(t, "b")
	a.Join("general")
	b.Join("general")
	a.SendText("general", "via sentinel")
	if m := b.WaitFor("message", nil); m.Str("text") != "via sentinel" || m.Num("seq") != 1 {
		t.Fatalf("got %v", m)
	}
}

// TestClusterOnRedisCluster: the same through a Redis Cluster of three
// masters; rooms land on different slots, and a room's script touches one.
func TestClusterOnRedisCluster(t *testing.T) {
	onePass(t)
	addrs := redistest.Cluster(t)
	url := "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	nodes := startCluster(t, 2, url)
	a, b := nodes[0].dial(t, "a"), nodes[1].dial(t, "b")
	rooms := []string{"alpha", "beta", "gamma", "delta", "epsilon"}
	for _, r := range rooms {
		a.Join(r)
		b.Join(r)
	}
	for i, r := range rooms {
		ack := a.Request(map[string]any{"type": "send", "id": fmt.Sprint("s", i), "room": r, "text": r, "key": fmt.Sprint("k", i)})
		if ack.Str("type") != "ack" || ack.Num("seq") != 1 {
			t.Fatalf("send to %s: %v", r, ack)
		}
		if m := b.WaitFor("message", func(f frame) bool { return f.Str("room") == r }); m.Str("text") != r {
			t.Fatalf("%s: got %v", r, m)
		}
	}
	// A retry with the same key in the same room is recognised.
	again := a.Request(map[string]any{"type": "send", "id": "again", "room": "alpha", "text": "alpha", "key": "k0"})
	if again.Num("seq") != 1 {
		t.Fatalf("retry on Redis Cluster: %v", again)
	}
	b.Quiet("message", 300*time.Millisecond)
	ack := b.Request(map[string]any{"type": "dm", "id": "d", "to": "a", "text": "hi"})
	if ack.Str("type") != "ack" {
		t.Fatalf("dm on Redis Cluster: %v", ack)
	}
	a.WaitFor("message", func(f frame) bool { return f.Str("room") == "@a" && f.Str("text") == "hi" })
}
