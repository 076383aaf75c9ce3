package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/internal/redistest"
	"github.com/chatgw/gateway/internal/wstest"
)

// startNodeProcess runs the real binary as a cluster node, waits until it
// is ready (Redis reached), and returns its process and addresses.
func startNodeProcess(t *testing.T, redisURL, id string) (*gwProc, string, string) {
	t.Helper()
	p := startGateway(t, nil, "--redis-url", redisURL, "--node-id", id, "--presence-refresh", "300ms",
		"--rate", "10000", "--burst", "10000")
	poll(t, 10*time.Second, "node "+id+" ready", func() bool { return httpStatus(t, "http://"+p.admin+"/readyz") == 200 })
	return p, p.addr, p.admin
}

// TestPresenceOfKilledNodeExpires: a node killed with SIGKILL cleans
// nothing up; its users go offline for the others once their presence
// entries expire (3 x --presence-refresh).
func TestPresenceOfKilledNodeExpires(t *testing.T) {
	r := redistest.Start(t)
	a, addrA, _ := startNodeProcess(t, r.URL(), "a")
	_, addrB, _ := startNodeProcess(t, r.URL(), "b")
	alice, bob := dialNode(t, addrA, "alice"), dialNode(t, addrB, "bob")
	alice.Join("general")
	time.Sleep(200 * time.Millisecond) // alice's entry is written before bob joins
	bob.Join("general")
	list := func() wsFrame {
		return bob.Request(map[string]any{"type": "presence", "id": "p", "room": "general"})
	}
	// Entries are written asynchronously: wait for bob's.
	for i := 0; list()["total"] != 2.0; i++ {
		if i == 100 {
			t.Fatalf("presence never listed both users")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	bob.Timeout = 10 * time.Second
	off := bob.WaitFor("presence", func(f wsFrame) bool { return f["user"] == "alice" && f["online"] == false })
	took := time.Since(start)
	// README: ~1 s with a 300 ms refresh (entries expire after 3 x 300 ms,
	// then the next sweep announces them); 1.5 s leaves room for the sweep
	// and scheduling, not for a broken expiry.
	if took > 1500*time.Millisecond {
		t.Fatalf("alice announced offline %v after her node died, want about 1 s (3 x --presence-refresh 300ms)", took)
	}
	if l := list(); l["total"] != 1.0 {
		t.Fatalf("presence after node a died: %v", l)
	}
	b, _ := json.Marshal(off)
	t.Logf("alice offline %v after SIGKILL of her node: %s", took.Round(10*time.Millisecond), b)
}

// TestClusterOfProcesses: three gateway processes on one Redis. Members on
// every node see one seq order while all of them send at once, a DM
// crosses nodes, and a member that reconnects to another node resumes with
// no gap and no duplicate.
func TestClusterOfProcesses(t *testing.T) {
	const each = 30
	r := redistest.Start(t)
	var addrs []string
	for i := 0; i < 3; i++ {
		_, addr, _ := startNodeProcess(t, r.URL(), fmt.Sprint("p", i))
		addrs = append(addrs, addr)
	}
	var conns []*wstest.Client
	var epoch string
	for i, addr := range addrs {
		c := dialNode(t, addr, fmt.Sprint("u", i))
		c.Timeout = 10 * time.Second
		j := c.Join("general")
		epoch, _ = j["epoch"].(string)
		conns = append(conns, c)
	}
	for i, c := range conns {
		go func(i int, ws *websocket.Conn) { // not c.Send: it fails the test, which only the test's goroutine may do
			for k := 0; k < each; k++ {
				_ = ws.WriteJSON(map[string]any{"type": "send", "room": "general", "text": fmt.Sprintf("u%d-%d", i, k)})
			}
		}(i, c.WS)
	}
	total := 3 * each
	var order [][]string
	for _, c := range conns {
		var texts []string
		for seq := 1; seq <= total; seq++ {
			m := c.WaitFor("message", nil)
			if m["seq"] != float64(seq) {
				t.Fatalf("got seq %v, want %d", m["seq"], seq)
			}
			texts = append(texts, m["text"].(string))
		}
		order = append(order, texts)
	}
	for i := 1; i < len(order); i++ {
		for k := range order[i] {
			if order[i][k] != order[0][k] {
				t.Fatalf("seq %d: %q on node %d, %q on node 0", k+1, order[i][k], i, order[0][k])
			}
		}
	}
	// A DM from node 1 to the user on node 2.
	conns[1].Send(map[string]any{"type": "dm", "id": "d", "to": "u2", "text": "psst"})
	dm := conns[2].WaitFor("", func(f wsFrame) bool { return f["room"] == "@u2" })
	if dm["from"] != "u1" || dm["text"] != "psst" {
		t.Fatalf("dm across processes: %v", dm)
	}
	// u0 leaves node 0; 5 more messages; u0 comes back through node 2.
	_ = conns[0].Close()
	for k := 0; k < 5; k++ {
		conns[1].Send(map[string]any{"type": "send", "room": "general", "text": fmt.Sprint("late-", k)})
	}
	conns[1].WaitFor("", func(f wsFrame) bool { return f["seq"] == float64(total+5) })
	back := dialNode(t, addrs[2], "u0")
	j := back.Request(map[string]any{"type": "join", "id": "rj", "room": "general",
		"since": map[string]any{"epoch": epoch, "seq": total}})
	msgs, _ := j["messages"].([]any)
	if j["recovered"] != true || len(msgs) != 5 {
		t.Fatalf("resume on another node: %v", j)
	}
	for k, m := range msgs {
		if mm := m.(map[string]any); mm["seq"] != float64(total+1+k) || mm["text"] != fmt.Sprint("late-", k) {
			t.Fatalf("resumed %d: %v", k, mm)
		}
	}
}
