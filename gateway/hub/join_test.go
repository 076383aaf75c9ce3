package hub_test

import (
	"testing"

	"github.com/chatgw/gateway/gateway/hub"
)

// A join split around a read made off the room's lock: messages fanned out
// while the member is pending are not sent but noted, JoinEnd hands the
// highest to finish, which reads on until it covers it; then the frame
// goes out and live messages follow, with no gap and no duplicate.
func TestJoinBeginEnd(t *testing.T) {
	h := newHub(t, hub.Config{})
	rs := &roomSeq{room: "r"}
	witness := &recorder{}
	rs.join(t, h, h.NewClient("bob", witness, now()))
	s := &recorder{}
	c := h.NewClient("alice", s, now())

	res := h.JoinBegin(c, "r")
	if !res.Added || !res.FirstConn || res.Users != 2 {
		t.Fatalf("JoinBegin: %+v", res)
	}
	covered := rs.latest // the read starts after JoinBegin: it sees seq 0
	rs.publish(h)        // seq 1, fanned out while alice is pending
	rs.publish(h)        // seq 2
	waitFor(t, "the fan-out of seq 2", func() bool { return len(witness.Frames(t)) == 3 })
	if n := len(s.Frames(t)); n != 0 {
		t.Fatalf("a pending member was sent %d frames", n)
	}
	var notes []uint64
	finish := func(noted uint64) ([]byte, uint64, bool) {
		notes = append(notes, noted)
		if noted > covered {
			covered = noted // read on: here, the messages up to noted
			return nil, 0, false
		}
		return joinedFrame("r", covered), covered, true
	}
	if !h.JoinEnd(c, "r", finish) || !h.JoinEnd(c, "r", finish) {
		t.Fatal("JoinEnd: alice is not in the room")
	}
	if len(notes) != 2 || notes[0] != 2 {
		t.Fatalf("finish saw %v, want noted 2 then the frame", notes)
	}
	rs.publish(h) // seq 3: live
	waitFor(t, "seq 3", func() bool { return len(s.Frames(t)) == 2 })
	if got := describe(t, s.Frames(t)); !equalStrings(got, []string{"joined:2", "message:3"}) {
		t.Fatalf("alice got %v", got)
	}
}

// JoinEnd after the connection went reports false and sends nothing.
func TestJoinEndAfterRemove(t *testing.T) {
	h := newHub(t, hub.Config{})
	s := &recorder{}
	c := h.NewClient("alice", s, now())
	h.JoinBegin(c, "r")
	h.Remove(c, nil)
	if h.JoinEnd(c, "r", func(uint64) ([]byte, uint64, bool) { return joinedFrame("r", 0), 0, true }) {
		t.Fatal("JoinEnd on a removed client reported true")
	}
	if n := len(s.Frames(t)); n != 0 {
		t.Fatalf("%d frames to a removed client", n)
	}
}
