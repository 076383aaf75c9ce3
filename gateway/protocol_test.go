package gateway_test

import (
	"github.com/chatgw/gateway/gateway"

	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// One test per row of docs/protocol.md's request table, over a real socket.

func TestWelcomeAndInbox(t *testing.T) {
	n := startNode(t, nil)
	c := n.dialRaw(t, "user=alice")
	w := c.next()
	if w.str("type") != "welcome" || w.str("user") != "alice" || w.str("node") != "test-node" ||
		len(w.str("session")) == 0 || w.num("heartbeat") != 25 {
		t.Fatalf("welcome %v", w)
	}
	lim, _ := w["limits"].(map[string]any)
	if lim["max_message_bytes"] != 16384.0 || lim["rate"] != 20.0 || lim["burst"] != 40.0 || lim["max_rooms"] != 100.0 {
		t.Fatalf("welcome limits %v", lim)
	}
	j := c.next()
	if j.str("type") != "joined" || j.str("room") != "@alice" || j["id"] != nil ||
		j["seq"] != 0.0 || j.str("epoch") == "" || j["recovered"] != false {
		t.Fatalf("inbox joined %v", j)
	}
	if msgs, ok := j["messages"].([]any); !ok || len(msgs) != 0 {
		t.Fatalf("inbox joined messages %v", j["messages"])
	}
}

func TestJoinLeavePresenceEvents(t *testing.T) {
	n := startNode(t, nil)
	a, b := n.dial(t, "alice"), n.dial(t, "bob")
	j := a.join("general")
	if j.str("id") != "j-general" || j.str("room") != "general" || j["seq"] != 0.0 || j["recovered"] != false {
		t.Fatalf("joined %v", j)
	}
	b.join("general")
	p := a.waitFor("presence", nil)
	if p.str("room") != "general" || p.str("user") != "bob" || p["online"] != true {
		t.Fatalf("presence online %v", p)
	}
	// A second connection of bob is not news: no event.
	b2 := n.dial(t, "bob")
	b2.join("general")
	left := b2.request(map[string]any{"type": "leave", "id": "2", "room": "general"})
	if left.str("type") != "left" || left.str("id") != "2" || left.str("room") != "general" {
		t.Fatalf("left %v", left)
	}
	a.quiet("presence", 200*time.Millisecond)
	// bob's last connection leaves: offline.
	b.request(map[string]any{"type": "leave", "id": "3", "room": "general"})
	p = a.waitFor("presence", nil)
	if p.str("user") != "bob" || p["online"] != false {
		t.Fatalf("presence offline %v", p)
	}
	// Disconnecting also counts as leaving.
	c := n.dial(t, "carol")
	c.join("general")
	a.waitFor("presence", func(f frame) bool { return f.str("user") == "carol" && f["online"] == true })
	_ = c.ws.Close()
	a.waitFor("presence", func(f frame) bool { return f.str("user") == "carol" && f["online"] == false })
}

func TestPresenceEventsStopAboveLimit(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.PresenceMaxMembers = 2 })
	a, b, c := n.dial(t, "alice"), n.dial(t, "bob"), n.dial(t, "carol")
	a.join("r")
	b.join("r") // 2 users after the join: event
	a.waitFor("presence", func(f frame) bool { return f.str("user") == "bob" })
	c.join("r") // 3 users after the join: no event
	a.quiet("presence", 200*time.Millisecond)
	c.request(map[string]any{"type": "leave", "id": "l", "room": "r"}) // 3 before the leave: no event
	a.quiet("presence", 200*time.Millisecond)
	b.request(map[string]any{"type": "leave", "id": "l", "room": "r"}) // 2 before: event
	a.waitFor("presence", func(f frame) bool { return f.str("user") == "bob" && f["online"] == false })
}

func TestSendTextAndData(t *testing.T) {
	n := startNode(t, nil)
	a, b := n.dial(t, "alice"), n.dial(t, "bob")
	a.join("general")
	b.join("general")
	ack := a.request(map[string]any{"type": "send", "id": "3", "room": "general", "text": "hi"})
	if ack.str("type") != "ack" || ack.str("id") != "3" || ack.str("room") != "general" || ack.num("seq") != 1 || ack.num("ts") == 0 {
		t.Fatalf("ack %v", ack)
	}
	for _, c := range []*client{a, b} { // the sender receives its own message too
		m := c.waitFor("message", nil)
		if m.str("room") != "general" || m.num("seq") != 1 || m.str("from") != "alice" || m.str("text") != "hi" || m["ts"] != ack["ts"] {
			t.Fatalf("%s got %v", c.user, m)
		}
	}
}

func TestSendDataVerbatim(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	a.join("general")
	data := `{"kind":"poll","options":[1,2.5,"x"],"nested":{"ok":true,"s":"<b>"}}`
	a.send(`{"type":"send","id":"4","room":"general","data":` + data + `}`)
	m := a.waitFor("message", nil)
	got, _ := json.Marshal(m["data"])
	var want any
	_ = json.Unmarshal([]byte(data), &want)
	wantB, _ := json.Marshal(want)
	if string(got) != string(wantB) {
		t.Fatalf("data %s, want %s", got, wantB)
	}
	if _, ok := m["text"]; ok {
		t.Fatalf("text present in a data-only message: %v", m)
	}
}

func TestDirectMessage(t *testing.T) {
	n := startNode(t, nil)
	a, b := n.dial(t, "alice"), n.dial(t, "bob")
	ack := a.request(map[string]any{"type": "dm", "id": "4", "to": "bob", "text": "psst"})
	if ack.str("type") != "ack" || ack.str("id") != "4" || ack.num("seq") != 1 || ack.str("room") != "@bob" {
		t.Fatalf("dm ack %v", ack)
	}
	m := b.waitFor("message", nil)
	if m.str("room") != "@bob" || m.num("seq") != 1 || m.str("from") != "alice" || m.str("to") != "bob" || m.str("text") != "psst" {
		t.Fatalf("bob got %v", m)
	}
	m = a.waitFor("message", nil) // before or after the ack (docs/protocol.md, Own sends)
	if m.str("room") != "@alice" || m.num("seq") != 1 || m.str("to") != "bob" {
		t.Fatalf("alice's copy %v", m)
	}
	// Stored in both inboxes: bob reconnects and resumes his inbox.
	b2 := n.dial(t, "bob")
	j := b2.request(map[string]any{"type": "join", "id": "r", "room": "@bob", "limit": 10})
	msgs, _ := j["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["text"] != "psst" {
		t.Fatalf("bob's inbox history %v", j)
	}
	// Only its owner may read an inbox.
	expectError(t, a.request(map[string]any{"type": "join", "id": "x", "room": "@bob"}), "forbidden")
	expectError(t, a.request(map[string]any{"type": "history", "id": "y", "room": "@bob"}), "forbidden")
	expectError(t, a.request(map[string]any{"type": "join", "id": "z", "room": "@bob", "since": map[string]any{"seq": 0, "epoch": j.str("epoch")}}), "forbidden")
}

func TestTypingThrottledAndRead(t *testing.T) {
	n := startNode(t, nil)
	a, b := n.dial(t, "alice"), n.dial(t, "bob")
	a.join("general")
	b.join("general")
	a.waitFor("presence", nil)
	b.send(map[string]any{"type": "typing", "room": "general"})
	ty := a.waitFor("typing", nil)
	if ty.str("room") != "general" || ty.str("user") != "bob" {
		t.Fatalf("typing %v", ty)
	}
	// Within 2 s further typing is dropped silently, with or without id.
	b.send(map[string]any{"type": "typing", "room": "general"})
	b.send(map[string]any{"type": "typing", "id": "t2", "room": "general"})
	b.request(map[string]any{"type": "ping", "id": "sync"}) // b saw no reply to typing
	a.quiet("typing", 300*time.Millisecond)
	b.quiet("typing", 10*time.Millisecond) // the typist does not get its own event
	time.Sleep(2 * time.Second)
	b.send(map[string]any{"type": "typing", "room": "general"})
	a.waitFor("typing", nil)

	b.send(map[string]any{"type": "read", "room": "general", "seq": 57})
	r := a.waitFor("read", nil)
	if r.str("user") != "bob" || r.num("seq") != 57 || r.str("room") != "general" {
		t.Fatalf("read %v", r)
	}
	b.send(map[string]any{"type": "read", "id": "old", "room": "general", "seq": 12}) // older: not forwarded
	pong := b.request(map[string]any{"type": "ping", "id": "sync2"})
	if pong.str("type") != "pong" {
		t.Fatalf("pong %v", pong)
	}
	a.quiet("read", 200*time.Millisecond)
}

func TestHistory(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.Burst = 100 })
	a := n.dial(t, "alice")
	a.join("general")
	for i := 1; i <= 60; i++ {
		a.sendText("general", fmt.Sprint("m", i))
	}
	h := a.request(map[string]any{"type": "history", "id": "5", "room": "general", "before": 57, "limit": 50})
	msgs, _ := h["messages"].([]any)
	if h.str("type") != "history" || h.str("id") != "5" || h.str("room") != "general" || len(msgs) != 50 {
		t.Fatalf("history %v", h)
	}
	for i, m := range msgs {
		if seq := m.(map[string]any)["seq"].(float64); seq != float64(7+i) {
			t.Fatalf("history[%d].seq = %v, want %d", i, seq, 7+i)
		}
	}
	h = a.request(map[string]any{"type": "history", "id": "6", "room": "general", "limit": 3})
	msgs, _ = h["messages"].([]any)
	if len(msgs) != 3 || msgs[2].(map[string]any)["seq"] != 60.0 {
		t.Fatalf("latest history %v", h)
	}
}

func TestJoinWithLimit(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.HistorySize = 10 })
	a := n.dial(t, "alice")
	a.join("general")
	for i := 1; i <= 15; i++ {
		a.sendText("general", fmt.Sprint("m", i))
	}
	b := n.dial(t, "bob")
	j := b.request(map[string]any{"type": "join", "id": "1", "room": "general", "limit": 4})
	msgs, _ := j["messages"].([]any)
	if j.num("seq") != 15 || len(msgs) != 4 || msgs[0].(map[string]any)["seq"] != 12.0 || j["recovered"] != false {
		t.Fatalf("join limit 4: %v", j)
	}
	// limit above the history size is clamped to it.
	c := n.dial(t, "carol")
	j = c.request(map[string]any{"type": "join", "id": "1", "room": "general", "limit": 50})
	if msgs, _ := j["messages"].([]any); len(msgs) != 10 {
		t.Fatalf("join limit 50 with history 10: %d messages", len(msgs))
	}
}

func TestPresenceList(t *testing.T) {
	n := startNode(t, nil)
	a, b := n.dial(t, "alice"), n.dial(t, "bob")
	a.join("general")
	b.join("general")
	p := a.request(map[string]any{"type": "presence", "id": "6", "room": "general"})
	users, _ := p["users"].([]any)
	if p.str("type") != "presence" || p.str("id") != "6" || len(users) != 2 || users[0] != "alice" || users[1] != "bob" || p["total"] != 2.0 {
		t.Fatalf("presence list %v", p)
	}
}

func TestPingPong(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	p := a.request(map[string]any{"type": "ping", "id": "8"})
	if p.str("type") != "pong" || p.str("id") != "8" {
		t.Fatalf("pong %v", p)
	}
}

func TestRefreshWithoutAuth(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	// Anonymous nodes verify no tokens, so a refresh cannot be accepted.
	expectError(t, a.request(map[string]any{"type": "refresh", "id": "7", "token": "x.y.z"}), "unauthorized")
	// The connection stays open.
	a.request(map[string]any{"type": "ping", "id": "after"})
}
