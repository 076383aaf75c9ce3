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
	w := c.Next()
	if w.Str("type") != "welcome" || w.Str("user") != "alice" || w.Str("node") != "test-node" ||
		len(w.Str("session")) == 0 || w.Num("heartbeat") != 25 {
		t.Fatalf("welcome %v", w)
	}
	lim, _ := w["limits"].(map[string]any)
	if lim["max_message_bytes"] != 16384.0 || lim["rate"] != 20.0 || lim["burst"] != 40.0 || lim["max_rooms"] != 100.0 {
		t.Fatalf("welcome limits %v", lim)
	}
	j := c.Next()
	if j.Str("type") != "joined" || j.Str("room") != "@alice" || j["id"] != nil ||
		j["seq"] != 0.0 || j.Str("epoch") == "" || j["recovered"] != false {
		t.Fatalf("inbox joined %v", j)
	}
	if msgs, ok := j["messages"].([]any); !ok || len(msgs) != 0 {
		t.Fatalf("inbox joined messages %v", j["messages"])
	}
}

func TestJoinLeavePresenceEvents(t *testing.T) {
	n := startNode(t, nil)
	a, b := n.dial(t, "alice"), n.dial(t, "bob")
	j := a.Join("general")
	if j.Str("id") != "j-general" || j.Str("room") != "general" || j["seq"] != 0.0 || j["recovered"] != false {
		t.Fatalf("joined %v", j)
	}
	b.Join("general")
	p := a.WaitFor("presence", nil)
	if p.Str("room") != "general" || p.Str("user") != "bob" || p["online"] != true {
		t.Fatalf("presence online %v", p)
	}
	// A second connection of bob is not news: no event.
	b2 := n.dial(t, "bob")
	b2.Join("general")
	left := b2.Request(map[string]any{"type": "leave", "id": "2", "room": "general"})
	if left.Str("type") != "left" || left.Str("id") != "2" || left.Str("room") != "general" {
		t.Fatalf("left %v", left)
	}
	a.Quiet("presence", 200*time.Millisecond)
	// bob's last connection leaves: offline.
	b.Request(map[string]any{"type": "leave", "id": "3", "room": "general"})
	p = a.WaitFor("presence", nil)
	if p.Str("user") != "bob" || p["online"] != false {
		t.Fatalf("presence offline %v", p)
	}
	// Disconnecting also counts as leaving.
	c := n.dial(t, "carol")
	c.Join("general")
	a.WaitFor("presence", func(f frame) bool { return f.Str("user") == "carol" && f["online"] == true })
	_ = c.WS.Close()
	a.WaitFor("presence", func(f frame) bool { return f.Str("user") == "carol" && f["online"] == false })
}

func TestPresenceEventsStopAboveLimit(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.PresenceMaxMembers = 2 })
	a, b, c := n.dial(t, "alice"), n.dial(t, "bob"), n.dial(t, "carol")
	a.Join("r")
	b.Join("r") // 2 users after the join: event
	a.WaitFor("presence", func(f frame) bool { return f.Str("user") == "bob" })
	c.Join("r") // 3 users after the join: no event
	a.Quiet("presence", 200*time.Millisecond)
	c.Request(map[string]any{"type": "leave", "id": "l", "room": "r"}) // 3 before the leave: no event
	a.Quiet("presence", 200*time.Millisecond)
	b.Request(map[string]any{"type": "leave", "id": "l", "room": "r"}) // 2 before: event
	a.WaitFor("presence", func(f frame) bool { return f.Str("user") == "bob" && f["online"] == false })
}

func TestSendTextAndData(t *testing.T) {
	n := startNode(t, nil)
	a, b := n.dial(t, "alice"), n.dial(t, "bob")
	a.Join("general")
	b.Join("general")
	ack := a.Request(map[string]any{"type": "send", "id": "3", "room": "general", "text": "hi"})
	if ack.Str("type") != "ack" || ack.Str("id") != "3" || ack.Str("room") != "general" || ack.Num("seq") != 1 || ack.Num("ts") == 0 {
		t.Fatalf("ack %v", ack)
	}
	for _, c := range []*client{a, b} { // the sender receives its own message too
		m := c.WaitFor("message", nil)
		if m.Str("room") != "general" || m.Num("seq") != 1 || m.Str("from") != "alice" || m.Str("text") != "hi" || m["ts"] != ack["ts"] {
			t.Fatalf("%s got %v", c.User, m)
		}
	}
}

func TestSendDataVerbatim(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	a.Join("general")
	data := `{"kind":"poll","options":[1,2.5,"x"],"nested":{"ok":true,"s":"<b>"}}`
	a.Send(`{"type":"send","id":"4","room":"general","data":` + data + `}`)
	m := a.WaitFor("message", nil)
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
	ack := a.Request(map[string]any{"type": "dm", "id": "4", "to": "bob", "text": "psst"})
	if ack.Str("type") != "ack" || ack.Str("id") != "4" || ack.Num("seq") != 1 || ack.Str("room") != "@bob" {
		t.Fatalf("dm ack %v", ack)
	}
	m := b.WaitFor("message", nil)
	if m.Str("room") != "@bob" || m.Num("seq") != 1 || m.Str("from") != "alice" || m.Str("to") != "bob" || m.Str("text") != "psst" {
		t.Fatalf("bob got %v", m)
	}
	m = a.WaitFor("message", nil) // before or after the ack (docs/protocol.md, Own sends)
	if m.Str("room") != "@alice" || m.Num("seq") != 1 || m.Str("to") != "bob" {
		t.Fatalf("alice's copy %v", m)
	}
	// Stored in both inboxes: bob reconnects and resumes his inbox.
	b2 := n.dial(t, "bob")
	j := b2.Request(map[string]any{"type": "join", "id": "r", "room": "@bob", "limit": 10})
	msgs, _ := j["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["text"] != "psst" {
		t.Fatalf("bob's inbox history %v", j)
	}
	// Only its owner may read an inbox.
	expectError(t, a.Request(map[string]any{"type": "join", "id": "x", "room": "@bob"}), "forbidden")
	expectError(t, a.Request(map[string]any{"type": "history", "id": "y", "room": "@bob"}), "forbidden")
	expectError(t, a.Request(map[string]any{"type": "join", "id": "z", "room": "@bob", "since": map[string]any{"seq": 0, "epoch": j.Str("epoch")}}), "forbidden")
}

func TestTypingThrottledAndRead(t *testing.T) {
	n := startNode(t, nil)
	a, b := n.dial(t, "alice"), n.dial(t, "bob")
	a.Join("general")
	b.Join("general")
	a.WaitFor("presence", nil)
	b.Send(map[string]any{"type": "typing", "room": "general"})
	ty := a.WaitFor("typing", nil)
	if ty.Str("room") != "general" || ty.Str("user") != "bob" {
		t.Fatalf("typing %v", ty)
	}
	// Within 2 s further typing is dropped silently, with or without id.
	b.Send(map[string]any{"type": "typing", "room": "general"})
	b.Send(map[string]any{"type": "typing", "id": "t2", "room": "general"})
	b.Request(map[string]any{"type": "ping", "id": "sync"}) // b saw no reply to typing
	a.Quiet("typing", 300*time.Millisecond)
	b.Quiet("typing", 10*time.Millisecond) // the typist does not get its own event
	time.Sleep(2 * time.Second)
	b.Send(map[string]any{"type": "typing", "room": "general"})
	a.WaitFor("typing", nil)

	b.Send(map[string]any{"type": "read", "room": "general", "seq": 57})
	r := a.WaitFor("read", nil)
	if r.Str("user") != "bob" || r.Num("seq") != 57 || r.Str("room") != "general" {
		t.Fatalf("read %v", r)
	}
	b.Send(map[string]any{"type": "read", "id": "old", "room": "general", "seq": 12}) // older: not forwarded
	pong := b.Request(map[string]any{"type": "ping", "id": "sync2"})
	if pong.Str("type") != "pong" {
		t.Fatalf("pong %v", pong)
	}
	a.Quiet("read", 200*time.Millisecond)
}

func TestHistory(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.Burst = 100 })
	a := n.dial(t, "alice")
	a.Join("general")
	for i := 1; i <= 60; i++ {
		a.SendText("general", fmt.Sprint("m", i))
	}
	h := a.Request(map[string]any{"type": "history", "id": "5", "room": "general", "before": 57, "limit": 50})
	msgs, _ := h["messages"].([]any)
	if h.Str("type") != "history" || h.Str("id") != "5" || h.Str("room") != "general" || len(msgs) != 50 {
		t.Fatalf("history %v", h)
	}
	for i, m := range msgs {
		if seq := m.(map[string]any)["seq"].(float64); seq != float64(7+i) {
			t.Fatalf("history[%d].seq = %v, want %d", i, seq, 7+i)
		}
	}
	h = a.Request(map[string]any{"type": "history", "id": "6", "room": "general", "limit": 3})
	msgs, _ = h["messages"].([]any)
	if len(msgs) != 3 || msgs[2].(map[string]any)["seq"] != 60.0 {
		t.Fatalf("latest history %v", h)
	}
}

func TestJoinWithLimit(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.HistorySize = 10 })
	a := n.dial(t, "alice")
	a.Join("general")
	for i := 1; i <= 15; i++ {
		a.SendText("general", fmt.Sprint("m", i))
	}
	b := n.dial(t, "bob")
	j := b.Request(map[string]any{"type": "join", "id": "1", "room": "general", "limit": 4})
	msgs, _ := j["messages"].([]any)
	if j.Num("seq") != 15 || len(msgs) != 4 || msgs[0].(map[string]any)["seq"] != 12.0 || j["recovered"] != false {
		t.Fatalf("join limit 4: %v", j)
	}
	// limit above the history size is clamped to it.
	c := n.dial(t, "carol")
	j = c.Request(map[string]any{"type": "join", "id": "1", "room": "general", "limit": 50})
	if msgs, _ := j["messages"].([]any); len(msgs) != 10 {
		t.Fatalf("join limit 50 with history 10: %d messages", len(msgs))
	}
}

func TestPresenceList(t *testing.T) {
	n := startNode(t, nil)
	a, b := n.dial(t, "alice"), n.dial(t, "bob")
	a.Join("general")
	b.Join("general")
	p := a.Request(map[string]any{"type": "presence", "id": "6", "room": "general"})
	users, _ := p["users"].([]any)
	if p.Str("type") != "presence" || p.Str("id") != "6" || len(users) != 2 || users[0] != "alice" || users[1] != "bob" || p["total"] != 2.0 {
		t.Fatalf("presence list %v", p)
	}
}

func TestPingPong(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	p := a.Request(map[string]any{"type": "ping", "id": "8"})
	if p.Str("type") != "pong" || p.Str("id") != "8" {
		t.Fatalf("pong %v", p)
	}
}

func TestRefreshWithoutAuth(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	// Anonymous nodes verify no tokens, so a refresh cannot be accepted.
	expectError(t, a.Request(map[string]any{"type": "refresh", "id": "7", "token": "x.y.z"}), "unauthorized")
	// The connection stays open.
	a.Request(map[string]any{"type": "ping", "id": "after"})
}
