package gateway_test

import (
	"fmt"
	"testing"

	"github.com/chatgw/gateway/gateway"
)

// Presence lists hold every member of a room above the presence cap (up to
// 1,000 users) and count them all: only the events stop.
func TestPresenceListAboveTheCap(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.PresenceMaxMembers = 2 })
	var cs []*client
	for i := 1; i <= 4; i++ {
		c := n.dial(t, fmt.Sprint("u", i))
		c.Join("r")
		cs = append(cs, c)
	}
	p := cs[0].Request(map[string]any{"type": "presence", "id": "p", "room": "r"})
	users, _ := p["users"].([]any)
	if p.Num("total") != 4 || fmt.Sprint(users) != "[u1 u2 u3 u4]" {
		t.Fatalf("presence above the cap: %v, want users u1..u4 and total 4", p)
	}
	// Leaving above the cap is recorded too.
	cs[3].Request(map[string]any{"type": "leave", "id": "l", "room": "r"})
	p = cs[0].Request(map[string]any{"type": "presence", "id": "p2", "room": "r"})
	if users, _ := p["users"].([]any); p.Num("total") != 3 || fmt.Sprint(users) != "[u1 u2 u3]" {
		t.Fatalf("presence after a leave above the cap: %v, want u1..u3 and total 3", p)
	}
}

// With 1,001 members the list holds 1,000 users and total counts 1,001.
func TestPresenceListHoldsAThousand(t *testing.T) {
	const members = 1001
	n := startNode(t, func(c *gateway.Config) {
		c.PresenceMaxMembers = 2 // no event storm: 1,001 clients would read a million events
		c.HandshakeRate = 0
		c.MaxConnsPerIP, c.MaxPendingPerIP = 0, 0
	})
	var cs []*client
	for i := 0; i < members; i++ {
		c := n.dial(t, fmt.Sprintf("u%04d", i))
		c.Send(map[string]any{"type": "join", "id": "j", "room": "big"})
		cs = append(cs, c)
	}
	for _, c := range cs {
		c.WaitFor("joined", nil)
	}
	p := cs[0].Request(map[string]any{"type": "presence", "id": "p", "room": "big"})
	users, _ := p["users"].([]any)
	if p.Num("total") != members || len(users) != 1000 || users[0] != "u0000" || users[999] != "u0999" {
		t.Fatalf("presence of %d members: total %v, %d users (first %v), want total %d and the first 1,000 sorted",
			members, p["total"], len(users), users[:min(len(users), 1)], members)
	}
}
