package hub_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/chatgw/gateway/gateway/hub"
)

// checkClose checks that f is a close frame with code: 0x88, its length,
// then the code big-endian (4001 is 0x0F 0xA1).
func checkClose(t *testing.T, f wsFrame, code int) {
	t.Helper()
	if f.op != 8 || len(f.payload) < 2 || int(f.payload[0])<<8|int(f.payload[1]) != code {
		t.Fatalf("want close frame %d, got opcode %d payload % x", code, f.op, f.payload)
	}
}

// Once the bytes the socket has not taken pass MaxOutboundBytes, a client
// is sent a 4001 close frame right after the frame that passed the cap, and
// nothing after it.
func TestSlowConsumerSend(t *testing.T) {
	frame := messageFrame("r", 1)
	l := int64(len(frame))
	h := newHub(t, hub.Config{MaxOutboundBytes: 3*l + l/2})
	s := &recorder{}
	c := h.NewClient("alice", s, now())

	for i := 0; i < 3; i++ {
		c.Send(frame)
	}
	if c.Closing() || c.Pending() != 3*l {
		t.Fatalf("under the cap: closing=%v pending=%d, want open with %d pending", c.Closing(), c.Pending(), 3*l)
	}
	c.Send(frame) // written, and now over the cap: close follows
	c.Send(frame) // after the close: dropped
	c.Send(frame)

	if !c.Closing() {
		t.Fatal("client over its cap is not closing")
	}
	if n := h.Stats().SlowConsumers; n != 1 {
		t.Fatalf("SlowConsumers = %d, want 1", n)
	}
	b := s.Bytes()
	want := bytes.Repeat(frame, 4)
	if !bytes.HasPrefix(b, want) {
		t.Fatalf("the frames up to the cap were not written intact")
	}
	rest := b[len(want):]
	if len(rest) < 4 || rest[0] != 0x88 || int(rest[1]) != len(rest)-2 || rest[2] != 0x0F || rest[3] != 0xA1 {
		t.Fatalf("after 4 frames want exactly one close frame 4001 (88 len 0f a1 ...), got % x", rest)
	}
	frames := s.Frames(t)
	if len(frames) != 5 {
		t.Fatalf("got %v, want 4 messages then the close frame only", describe(t, frames))
	}
	if s.Closes() != 0 {
		t.Fatal("slow consumer's socket dropped at once; it should get the close grace")
	}
}

// Bytes the socket took (Written) no longer count towards the cap.
func TestWrittenLowersPending(t *testing.T) {
	frame := messageFrame("r", 1)
	l := int64(len(frame))
	h := newHub(t, hub.Config{MaxOutboundBytes: 3 * l})
	s := &recorder{}
	c := h.NewClient("alice", s, now())
	for i := 0; i < 3; i++ {
		c.Send(frame)
	}
	c.Written(int(2 * l))
	if p := c.Pending(); p != l {
		t.Fatalf("Pending = %d, want %d", p, l)
	}
	c.Send(frame)
	c.Send(frame) // exactly at the cap: allowed
	if c.Closing() {
		t.Fatal("closed although the socket took the bytes")
	}
	c.Written(int(3 * l))
	for i := 0; i < 3; i++ {
		c.Send(frame)
	}
	if c.Closing() || h.Stats().SlowConsumers != 0 {
		t.Fatal("closed at the cap")
	}
	if got := describe(t, s.Frames(t)); len(got) != 8 {
		t.Fatalf("got %d frames, want 8", len(got))
	}
	c.Send(frame) // one over
	if !c.Closing() {
		t.Fatal("not closed one frame over the cap")
	}
	frames := s.Frames(t)
	checkClose(t, frames[len(frames)-1], hub.CloseSlowConsumer)
}

// Fan-out respects the cap too: a member that never drains gets a gapless
// prefix of the messages (at most the cap plus one coalesced write), then
// the 4001 close frame, then nothing.
func TestSlowConsumerFanout(t *testing.T) {
	l := int64(len(messageFrame("r", 1)))
	h := newHub(t, hub.Config{MaxOutboundBytes: 3*l + l/2, Workers: 1})
	rs := &roomSeq{room: "r"}
	slow, fine := &recorder{}, &recorder{}
	sc := h.NewClient("slow", slow, now())
	fc := h.NewClient("fine", fine, now())
	for _, c := range []*hub.Client{sc, fc} {
		if _, err := h.Join(c, "r", func() ([]byte, uint64, error) { return nil, 0, nil }); err != nil {
			t.Fatal(err)
		}
	}
	const total = 10
	for i := 0; i < total; i++ {
		rs.publish(h)
		fc.Written(int(l)) // fine's socket keeps up
	}
	h.Stop()

	frames := slow.Frames(t)
	if len(frames) == 0 {
		t.Fatal("slow member got nothing, not even a close frame")
	}
	checkClose(t, frames[len(frames)-1], hub.CloseSlowConsumer)
	msgs := describe(t, frames[:len(frames)-1])
	if len(msgs) == 0 || !equalStrings(msgs, seqRun(1, uint64(len(msgs)))) {
		t.Fatalf("slow member got %v before its close frame; want a gapless prefix from seq 1", msgs)
	}
	if !sc.Closing() || fc.Closing() {
		t.Fatalf("closing: slow=%v fine=%v", sc.Closing(), fc.Closing())
	}
	if got := describe(t, fine.Frames(t)); !equalStrings(got, seqRun(1, total)) {
		t.Fatalf("the member that keeps up got %v", got)
	}
	if n := h.Stats().SlowConsumers; n != 1 {
		t.Fatalf("SlowConsumers = %d, want 1", n)
	}
}

// Close writes a close frame after what is queued, stops further writes,
// and Tick drops the socket only once CloseGrace has passed.
func TestCloseGrace(t *testing.T) {
	const grace = int64(50 * time.Millisecond)
	h := newHub(t, hub.Config{CloseGrace: grace})
	s := &recorder{}
	c := h.NewClient("alice", s, now())
	c.Send(messageFrame("r", 1))

	before := now()
	c.Close(hub.CloseGoingAway, "draining")
	after := now()
	c.Close(hub.CloseNormal, "again") // no second close frame
	c.Send(messageFrame("r", 2))      // dropped

	frames := s.Frames(t)
	if len(frames) != 2 {
		t.Fatalf("got %v, want the message and one close frame", describe(t, frames))
	}
	checkClose(t, frames[1], hub.CloseGoingAway)
	if string(frames[1].payload[2:]) != "draining" {
		t.Fatalf("close reason %q", frames[1].payload[2:])
	}

	for shard := 0; shard < hub.ClientShards; shard++ {
		h.Tick(shard, before, int64(time.Hour))
	}
	h.Tick(0, before+grace-1, int64(time.Hour))
	if s.Closes() != 0 {
		t.Fatal("socket dropped before the close grace passed")
	}
	h.Tick(0, after+grace, int64(time.Hour))
	if s.Closes() != 1 {
		t.Fatalf("socket closed %d times once the grace passed, want 1", s.Closes())
	}
	for shard := 0; shard < hub.ClientShards; shard++ {
		h.Tick(shard, after+2*grace, int64(time.Hour))
	}
	if s.Closes() != 1 {
		t.Fatalf("socket closed %d times, want once", s.Closes())
	}
	if n := len(s.Frames(t)); n != 2 {
		t.Fatalf("a closing client got %d frames, want no ping after its close frame", n)
	}
}

// A closing client removed from the hub before its grace ends is left to
// the gateway: Tick does not close its socket again.
func TestCloseGraceRemoved(t *testing.T) {
	const grace = int64(time.Millisecond)
	h := newHub(t, hub.Config{CloseGrace: grace})
	s := &recorder{}
	c := h.NewClient("alice", s, now())
	c.Close(hub.CloseNormal, "bye")
	h.Remove(c, nil)
	h.Tick(0, now()+time.Hour.Nanoseconds(), int64(time.Hour))
	if s.Closes() != 0 {
		t.Fatalf("Tick closed a removed client's socket")
	}
}

// Tick pings live clients and closes (1000) those silent for longer than
// idle; Seen keeps a client alive.
func TestTickHeartbeat(t *testing.T) {
	const idle = int64(50 * time.Second)
	h := newHub(t, hub.Config{CloseGrace: int64(time.Second)})
	t0 := now()
	fresh, stale, revived := &recorder{}, &recorder{}, &recorder{}
	fc := h.NewClient("fresh", fresh, t0)
	sc := h.NewClient("stale", stale, t0-idle-1)
	rc := h.NewClient("revived", revived, t0-idle-1)
	rc.Seen(t0 - 1)
	edge := &recorder{}
	h.NewClient("edge", edge, t0-idle) // exactly idle: still alive

	for shard := 0; shard < hub.ClientShards; shard++ {
		h.Tick(shard, t0, idle)
	}
	for name, s := range map[string]*recorder{"fresh": fresh, "revived": revived, "edge": edge} {
		if b := s.Bytes(); !bytes.Equal(b, []byte{0x89, 0x00}) {
			t.Errorf("%s: got % x, want one ping 89 00", name, b)
		}
	}
	frames := stale.Frames(t)
	if len(frames) != 1 {
		t.Fatalf("stale client got %v, want one close frame", describe(t, frames))
	}
	checkClose(t, frames[0], hub.CloseNormal)
	if !sc.Closing() || fc.Closing() || rc.Closing() {
		t.Fatalf("closing: stale=%v fresh=%v revived=%v", sc.Closing(), fc.Closing(), rc.Closing())
	}
	if fc.Pending() != 2 {
		t.Fatalf("a ping is not counted as pending bytes: Pending = %d", fc.Pending())
	}

	// Next round: the stale client gets nothing more; the others a ping each.
	for shard := 0; shard < hub.ClientShards; shard++ {
		h.Tick(shard, t0+1, idle)
	}
	if n := len(stale.Frames(t)); n != 1 {
		t.Fatalf("closed client got %d frames, want still 1", n)
	}
	if b := fresh.Bytes(); !bytes.Equal(b, []byte{0x89, 0x00, 0x89, 0x00}) {
		t.Fatalf("fresh client after two rounds: % x", b)
	}
	// Only one shard per call: a client is pinged by exactly one shard.
	pinged := 0
	for shard := 0; shard < hub.ClientShards; shard++ {
		before := len(fresh.Bytes())
		h.Tick(shard, t0+2, idle)
		if len(fresh.Bytes()) != before {
			pinged++
		}
	}
	if pinged != 1 {
		t.Fatalf("fresh client pinged by %d shards in one cycle, want 1", pinged)
	}
}
