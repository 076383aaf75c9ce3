package hub_test

import (
	"testing"
	"time"

	"github.com/chatgw/gateway/gateway/hub"
)

// A close asked for while replies are owed waits for them: deliveries stop
// at once, the owed replies go out, then the close frame, and nothing else.
func TestCloseWaitsForOwedReplies(t *testing.T) {
	h := newHub(t, hub.Config{})
	s := &recorder{}
	c := h.NewClient("alice", s, now())
	witness := &recorder{}
	rs := &roomSeq{room: "r"}
	rs.join(t, h, c)
	rs.join(t, h, h.NewClient("bob", witness, now()))
	rs.publish(h)
	waitFor(t, "the fan-out of seq 1", func() bool { return len(s.Frames(t)) == 2 })

	// Two requests accepted: one answered in its handler, one later.
	if !c.Owe() || !c.Owe() {
		t.Fatal("Owe refused on an open client")
	}
	c.OweLater()
	c.Close(4002, "abuse")
	if !c.Closing() {
		t.Fatal("a client whose close waits must report Closing")
	}
	if c.Owe() {
		t.Fatal("Owe accepted a request after the close started")
	}
	rs.publish(h) // a delivery after the close started: dropped
	waitFor(t, "the fan-out of seq 2", func() bool { return len(witness.Frames(t)) == 3 })
	c.Send(ackFrame("a1"))
	c.Repay()
	c.Repay() // the handler returns; one reply is still owed
	if got := describe(t, s.Frames(t)); !equalStrings(got, []string{"joined:0", "message:1", "ack"}) {
		t.Fatalf("before the last reply: %v", got)
	}
	c.Send(ackFrame("a2"))
	c.Repay()
	want := []string{"joined:0", "message:1", "ack", "ack", "close:4002"}
	if got := describe(t, s.Frames(t)); !equalStrings(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if c.CloseCode() != 4002 {
		t.Fatalf("CloseCode = %d, want 4002", c.CloseCode())
	}
	c.Send(ackFrame("late")) // after the close frame: nothing
	if got := describe(t, s.Frames(t)); len(got) != len(want) {
		t.Fatalf("a frame after the close frame: %v", got)
	}
}

// With nothing owed, a close goes out at once, as before.
func TestCloseWithNothingOwedIsImmediate(t *testing.T) {
	h := newHub(t, hub.Config{})
	s := &recorder{}
	c := h.NewClient("alice", s, now())
	c.Owe()
	c.Repay()
	c.Close(4000, "expired")
	if got := describe(t, s.Frames(t)); !equalStrings(got, []string{"close:4000"}) {
		t.Fatalf("got %v, want the close frame at once", got)
	}
}

// A reply that never comes does not keep the connection open: the close
// goes out after MaxOwedWait (Tick checks), and a reply after that is
// dropped.
func TestOwedWaitIsBounded(t *testing.T) {
	h := newHub(t, hub.Config{CloseGrace: int64(time.Hour)})
	s := &recorder{}
	c := h.NewClient("alice", s, now())
	c.Owe()
	c.Close(1001, "draining")
	h.Tick(0, now(), int64(time.Hour))
	if got := describe(t, s.Frames(t)); len(got) != 0 {
		t.Fatalf("close went out before MaxOwedWait: %v", got)
	}
	h.Tick(0, now()+int64(hub.MaxOwedWait), int64(time.Hour))
	if got := describe(t, s.Frames(t)); !equalStrings(got, []string{"close:1001"}) {
		t.Fatalf("after MaxOwedWait got %v, want the close frame", got)
	}
	c.Send(ackFrame("late"))
	c.Repay()
	if got := describe(t, s.Frames(t)); len(got) != 1 {
		t.Fatalf("a reply after the close frame: %v", got)
	}
}

// A slow consumer's close waits for owed replies too (they are small and
// few), but no delivery is written meanwhile.
func TestSlowConsumerCloseWaitsForOwedReplies(t *testing.T) {
	frame := messageFrame("r", 1)
	l := int64(len(frame))
	h := newHub(t, hub.Config{MaxOutboundBytes: 2 * l})
	s := &recorder{}
	c := h.NewClient("alice", s, now())
	c.Owe()
	c.Send(frame)
	c.Send(frame)
	c.Send(frame) // over the cap: the 4001 waits for the owed reply
	c.Send(ackFrame("a1"))
	c.Repay()
	got := describe(t, s.Frames(t))
	want := []string{"message:1", "message:1", "message:1", "ack", "close:4001"}
	if !equalStrings(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
