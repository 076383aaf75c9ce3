package hub_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/chatgw/gateway/gateway/hub"
)

// Two goroutines publish to one room at once. The seq is assigned inside the
// store callback (under the room lock), so every member must receive the
// same sequence 1..N: strictly increasing by one, no gap, no duplicate.
func TestConcurrentPublishOrder(t *testing.T) {
	h := newHub(t, hub.Config{Workers: 3})
	rs := &roomSeq{room: "busy"}
	const members, perPublisher = 100, 500
	sinks := make([]*recorder, members)
	for i := range sinks {
		sinks[i] = &recorder{}
		join(t, h, h.NewClient("u"+itoa(uint64(i)), sinks[i], now()), rs.room)
	}

	var wg sync.WaitGroup
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perPublisher; i++ {
				rs.publish(h)
			}
		}()
	}
	wg.Wait()
	h.Stop()

	const total = 2 * perPublisher
	want := append([]string{"joined:0"}, seqRun(1, total)...)
	ref := sinks[0].Bytes()
	for i, s := range sinks {
		frames := s.Frames(t)
		got := describe(t, frames)
		if !equalStrings(got, want) {
			t.Fatalf("member %d: %s", i, diff(got, want))
		}
		if !bytes.Equal(s.Bytes(), ref) {
			t.Fatalf("member %d's byte stream differs from member 0's", i)
		}
	}
	if st := h.Stats(); st.Deliveries != members*total || st.Writes > st.Deliveries || st.Writes < members {
		t.Fatalf("stats %+v, want %d deliveries", st, members*total)
	}
}

// Frames queued while a member's socket write is stalled leave coalesced:
// one write carries many frames, and the bytes are exactly the frames in
// order.
func TestBatchingCoalescesBurst(t *testing.T) {
	h := newHub(t, hub.Config{Workers: 1})
	rs := &roomSeq{room: "burst"}
	const burst = 20

	gate := newGateSink(t)
	other := &recorder{}
	rs.join(t, h, h.NewClient("alice", gate, now()))
	rs.join(t, h, h.NewClient("bob", other, now()))
	joinedWrites := other.Writes()

	gate.arm()
	rs.publish(h) // 1: the worker blocks on alice's socket
	gate.waitBlocked(t)
	var want bytes.Buffer
	want.Write(joinedFrame(rs.room, 0))
	want.Write(messageFrame(rs.room, 1))
	for i := 2; i <= burst; i++ {
		rs.publish(h)
		want.Write(messageFrame(rs.room, uint64(i)))
	}
	gate.open()
	waitFor(t, "all deliveries", func() bool { return h.Stats().Deliveries == 2*burst })
	h.Stop()

	st := h.Stats()
	if st.Writes >= st.Deliveries {
		t.Fatalf("no batching: %d writes for %d deliveries", st.Writes, st.Deliveries)
	}
	// Message 1 alone, then 2..burst in one write, for each member.
	if st.Writes != 4 {
		t.Errorf("Writes = %d, want 4 (2 per member)", st.Writes)
	}
	for name, s := range map[string]*recorder{"alice": &gate.recorder, "bob": other} {
		if !bytes.Equal(s.Bytes(), want.Bytes()) {
			t.Errorf("%s's bytes differ from the frames concatenated in order:\n got %q\nwant %q", name, s.Bytes(), want.Bytes())
		}
		if w := s.Writes() - joinedWrites; w != 2 {
			t.Errorf("%s: %d socket writes for %d messages, want 2", name, w, burst)
		}
	}
}

// Interleaved bursts for several rooms on one worker: each member still gets
// exactly its room's frames, in order, and a member of two rooms gets both
// streams, each in order.
func TestBatchingSeveralRooms(t *testing.T) {
	h := newHub(t, hub.Config{Workers: 1})
	rooms := []*roomSeq{{room: "a"}, {room: "b"}, {room: "c"}}
	gate := newGateSink(t)
	stall := h.NewClient("stall", gate, now())
	rooms[0].join(t, h, stall)

	sinks := map[string]*recorder{}
	for _, rs := range rooms {
		s := &recorder{}
		sinks[rs.room] = s
		rs.join(t, h, h.NewClient("only-"+rs.room, s, now()))
	}
	both := &recorder{}
	bc := h.NewClient("both", both, now())
	rooms[0].join(t, h, bc)
	rooms[1].join(t, h, bc)

	gate.arm()
	rooms[0].publish(h)
	gate.waitBlocked(t)
	const rounds = 30
	for i := 0; i < rounds; i++ {
		for _, rs := range rooms {
			if i%(len(rs.room)+int(rs.room[0]-'a')) == 0 { // uneven runs
				rs.publish(h)
			}
			rs.publish(h)
		}
	}
	gate.open()
	h.Stop()

	for _, rs := range rooms {
		got := describe(t, sinks[rs.room].Frames(t))
		want := append([]string{"joined:0"}, seqRun(1, rs.latest)...)
		if !equalStrings(got, want) {
			t.Errorf("room %s member got %v, want %v", rs.room, got, want)
		}
	}
	var fromA, fromB []uint64
	for _, f := range both.Frames(t) {
		b := decode(t, f)
		if b.Type != "message" {
			continue
		}
		switch b.Room {
		case "a":
			fromA = append(fromA, b.Seq)
		case "b":
			fromB = append(fromB, b.Seq)
		default:
			t.Fatalf("member of a and b got a frame of %q", b.Room)
		}
	}
	for name, got := range map[string][]uint64{"a": fromA, "b": fromB} {
		latest := rooms[0].latest
		if name == "b" {
			latest = rooms[1].latest
		}
		if uint64(len(got)) != latest {
			t.Errorf("room %s: member of both got %d messages, want %d", name, len(got), latest)
		}
		for i, s := range got {
			if s != uint64(i+1) {
				t.Fatalf("room %s: member of both got seq %d at position %d", name, s, i)
			}
		}
	}
}

// Stop returns only once everything queued has been written.
func TestStopDrains(t *testing.T) {
	h := hub.New(hub.Config{Workers: 4})
	const rooms, members, msgs = 16, 3, 200
	var seqs []*roomSeq
	var sinks []*recorder
	for r := 0; r < rooms; r++ {
		rs := &roomSeq{room: "room-" + itoa(uint64(r))}
		seqs = append(seqs, rs)
		for m := 0; m < members; m++ {
			s := &recorder{}
			sinks = append(sinks, s)
			join(t, h, h.NewClient("u"+itoa(uint64(m)), s, now()), rs.room)
		}
	}
	var wg sync.WaitGroup
	for _, rs := range seqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < msgs; i++ {
				rs.publish(h)
			}
		}()
	}
	wg.Wait()
	h.Stop()
	// No waiting: Stop must have drained.
	if d := h.Stats().Deliveries; d != rooms*members*msgs {
		t.Fatalf("after Stop, %d deliveries, want %d", d, rooms*members*msgs)
	}
	for i, s := range sinks {
		if n := len(s.Frames(t)); n != 1+msgs {
			t.Fatalf("sink %d has %d frames after Stop, want %d", i, n, 1+msgs)
		}
	}
	h.Stop() // harmless
}

// A room above SplitRoomsAbove is fanned out by every worker; each member
// still gets every seq once, in order, while publishers race and the room
// crosses the threshold mid-stream.
func TestSplitRoomKeepsPerMemberOrder(t *testing.T) {
	h := newHub(t, hub.Config{Workers: 3, SplitRoomsAbove: 20})
	rs := &roomSeq{room: "big"}
	const members, total = 40, 600
	sinks := make([]*gidSink, members)
	join := func(i int) {
		sinks[i] = &gidSink{}
		rs.join(t, h, h.NewClient(fmt.Sprint("u", i), sinks[i], now()))
	}
	for i := 0; i < 10; i++ {
		join(i)
	}
	// One publisher runs while the room grows past the threshold: the
	// split happens mid-stream, with joins racing publishes.
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 0; i < total/2; i++ {
			rs.publish(h)
		}
	}()
	for i := 10; i < members; i++ {
		join(i)
	}
	<-published
	// The rest once every member is in: the room is over the threshold
	// whatever the race above did (on a loaded machine the publisher can
	// finish before the 21st join).
	for i := total / 2; i < total; i++ {
		rs.publish(h)
	}
	h.Stop()
	writers := map[int64]bool{}
	for i, s := range sinks {
		frames := s.Frames(t)
		if len(frames) == 0 {
			t.Fatalf("member %d got nothing", i)
		}
		j := decode(t, frames[0])
		if j.Type != "joined" {
			t.Fatalf("member %d: first frame %q, want joined", i, j.Type)
		}
		if got, want := describe(t, frames[1:]), seqRun(j.Seq+1, total); !equalStrings(got, want) {
			t.Fatalf("member %d joined at %d: %s", i, j.Seq, diff(got, want))
		}
		for g := range s.gids() {
			writers[g] = true
		}
	}
	// Split for real: the members' frames were written by more than one
	// worker (an unsplit room is fanned out by its one worker).
	if len(writers) < 2 {
		t.Fatalf("every member was written by one goroutine: the %d-member room was not split", members)
	}
}

// gidSink is a recorder that also notes which goroutines wrote to it,
// after its first write (the joined frame, written by the joiner).
type gidSink struct {
	recorder
	gmu   sync.Mutex
	gs    map[int64]bool
	first bool
}

func (s *gidSink) Write(b []byte) (int, error) {
	s.gmu.Lock()
	first := !s.first
	s.first = true
	s.gmu.Unlock()
	if first {
		return s.recorder.Write(b)
	}
	var buf [32]byte
	n := runtime.Stack(buf[:], false) // "goroutine 123 [running]:..."
	f := strings.Fields(string(buf[:n]))
	if len(f) > 1 {
		if id, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			s.gmu.Lock()
			if s.gs == nil {
				s.gs = map[int64]bool{}
			}
			s.gs[id] = true
			s.gmu.Unlock()
		}
	}
	return s.recorder.Write(b)
}

func (s *gidSink) gids() map[int64]bool {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	return s.gs
}
