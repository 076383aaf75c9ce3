package gateway_test

import "testing"

func TestSmoke(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	b := n.dial(t, "bob")
	a.join("general")
	b.join("general")
	a.waitFor("presence", nil)
	ack := a.sendText("general", "hi")
	if ack.num("seq") != 1 {
		t.Fatalf("ack %v", ack)
	}
	m := b.waitFor("message", nil)
	if m.str("text") != "hi" || m.str("from") != "alice" {
		t.Fatalf("message %v", m)
	}
}
