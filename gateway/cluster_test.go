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
	var out []*node
	for i := 0; i < nodes; i++ {
		out = append(out, startNode(t, func(c *gateway.Config) {
			c.RedisURL = redisURL
			c.NodeID = fmt.Sprintf("node-%d", i)
			c.Rate, c.Burst = 10000, 10000
		}))
	}
	for _, n := range out {
		waitReady(t, n, 200)
	}
	return out
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
	const each = 40
	r := redistest.Start(t)
	nodes := startCluster(t, 3, r.URL())
	var members []*client
	for i, n := range nodes {
		c := n.dial(t, fmt.Sprintf("u%d", i))
		c.join("general")
		members = append(members, c)
	}
	// Every member sends at once, on its own node.
	var wg sync.WaitGroup
	for _, c := range members {
		wg.Add(1)
		go func(c *client) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				b := fmt.Sprintf(`{"type":"send","room":"general","text":"%s-%d"}`, c.user, i)
				if err := c.ws.WriteMessage(websocket.TextMessage, []byte(b)); err != nil {
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
			if got[j].str("text") != first[j].str("text") || got[j].str("from") != first[j].str("from") {
				t.Fatalf("seq %d is %q from %s on node %d but %q from %s on node 0", j+1,
					got[j].str("text"), got[j].str("from"), i, first[j].str("text"), first[j].str("from"))
			}
		}
		c.quiet("message", 200*time.Millisecond)
	}
}

func TestClusterDMAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	nodes := startCluster(t, 3, r.URL())
	alice, bob, alice2 := nodes[0].dial(t, "alice"), nodes[1].dial(t, "bob"), nodes[2].dial(t, "alice")
	ack := alice.request(map[string]any{"type": "dm", "id": "d1", "to": "bob", "text": "psst"})
	if ack.str("type") != "ack" || ack.str("room") != "@bob" || ack.num("seq") != 1 {
		t.Fatalf("dm ack %v", ack)
	}
	m := bob.waitFor("message", func(f frame) bool { return f.str("room") == "@bob" })
	if m.str("from") != "alice" || m.str("to") != "bob" || m.str("text") != "psst" || m.num("seq") != 1 {
		t.Fatalf("bob got %v", m)
	}
	// alice's connection on another node sees the copy in her inbox.
	e := alice2.waitFor("message", func(f frame) bool { return f.str("room") == "@alice" })
	if e.str("to") != "bob" || e.str("text") != "psst" {
		t.Fatalf("alice's other connection got %v", e)
	}
}

func TestClusterResumeOnAnotherNode(t *testing.T) {
	r := redistest.Start(t)
	nodes := startCluster(t, 3, r.URL())
	alice, bob := nodes[0].dial(t, "alice"), nodes[1].dial(t, "bob")
	j := alice.join("general")
	epoch := j.str("epoch")
	bob.join("general")
	for i := 1; i <= 5; i++ {
		bob.sendText("general", fmt.Sprint("m", i))
	}
	collect(t, alice, "general", 1, 5)
	_ = alice.ws.Close()
	for i := 6; i <= 8; i++ {
		bob.sendText("general", fmt.Sprint("m", i))
	}
	// alice comes back through another node and resumes after seq 5.
	again := nodes[2].dial(t, "alice")
	j = again.request(map[string]any{"type": "join", "id": "rj", "room": "general",
		"since": map[string]any{"epoch": epoch, "seq": 5}})
	msgs, _ := j["messages"].([]any)
	if j["recovered"] != true || len(msgs) != 3 || j.num("seq") != 8 {
		t.Fatalf("resume on another node: %v", j)
	}
	for i, m := range msgs {
		if mm := m.(map[string]any); mm["seq"] != float64(6+i) || mm["text"] != fmt.Sprint("m", 6+i) {
			t.Fatalf("resumed message %d: %v", i, mm)
		}
	}
	bob.sendText("general", "m9")
	if m := again.waitFor("message", nil); m.num("seq") != 9 {
		t.Fatalf("after resuming: %v, want seq 9", m)
	}
	again.quiet("message", 200*time.Millisecond)
}
