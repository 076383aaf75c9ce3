package hub_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/chatgw/gateway/gateway/hub"
)

// A member gets its joined frame first, then only the live messages its
// joined frame did not cover, in seq order. Messages 2 and 3 are stored
// before b joins but still queued (the worker is stalled on a's socket), so
// only the joined point keeps them from reaching b twice.
func TestJoinFrameThenMessagesAfterCovered(t *testing.T) {
	h := newHub(t, hub.Config{Workers: 1})
	rs := &roomSeq{room: "general"}

	sa := newGateSink(t)
	a := h.NewClient("alice", sa, now())
	rs.join(t, h, a)
	sa.arm()
	rs.publish(h) // seq 1: the worker blocks writing it to a
	sa.waitBlocked(t)
	rs.publish(h) // 2
	rs.publish(h) // 3

	sb := &recorder{}
	b := h.NewClient("bob", sb, now())
	res := rs.join(t, h, b) // covers 3
	if res.Rejoin || !res.FirstConn || res.Users != 2 {
		t.Fatalf("join result %+v, want first join of a second user", res)
	}
	if got := describe(t, sb.Frames(t)); !equalStrings(got, []string{"joined:3"}) {
		t.Fatalf("right after Join, b has %v; want only its joined frame", got)
	}
	rs.publish(h) // 4
	rs.publish(h) // 5
	sa.open()

	waitFor(t, "a to get 5 messages", func() bool { return len(sa.Frames(t)) == 6 })
	waitFor(t, "b to get 2 messages", func() bool { return len(sb.Frames(t)) >= 3 })
	h.Stop()

	wantA := append([]string{"joined:0"}, seqRun(1, 5)...)
	if got := describe(t, sa.Frames(t)); !equalStrings(got, wantA) {
		t.Errorf("a got %v, want %v", got, wantA)
	}
	wantB := append([]string{"joined:3"}, seqRun(4, 5)...)
	if got := describe(t, sb.Frames(t)); !equalStrings(got, wantB) {
		t.Errorf("b got %v, want %v", got, wantB)
	}
}

// Joins racing with a publisher: whatever seq a member's joined frame
// covers, it then receives exactly the messages after it, with no gap and no
// duplicate.
func TestJoinRacingPublish(t *testing.T) {
	h := newHub(t, hub.Config{Workers: 2})
	rs := &roomSeq{room: "race"}
	const total, joiners = 2000, 30

	first := &recorder{}
	rs.join(t, h, h.NewClient("u0", first, now()))

	sinks := make([]*recorder, joiners)
	done := make(chan struct{})
	// Join k starts when the publisher reaches checkpoint k and runs while
	// it publishes the next stretch; the publisher waits for join k before
	// checkpoint k+1. So every run has joins racing publishes in the
	// middle of the stream, not only when the scheduler happens to
	// interleave them.
	progress, joinedOne := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		step, k := total/(joiners+1), 0
		for i := 0; i < total; i++ {
			rs.publish(h)
			if (i+1)%step == 0 && k < joiners {
				if k > 0 {
					<-joinedOne
				}
				progress <- struct{}{}
				k++
			}
		}
		<-joinedOne
	}()
	for i := range sinks {
		<-progress
		sinks[i] = &recorder{}
		c := h.NewClient("u"+itoa(uint64(i+1)), sinks[i], now())
		if _, err := h.Join(c, rs.room, func() ([]byte, uint64, error) {
			return joinedFrame(rs.room, rs.latest), rs.latest, nil
		}); err != nil {
			t.Fatal(err)
		}
		joinedOne <- struct{}{}
	}
	<-done
	h.Stop()

	sawMiddle := false
	for i, s := range append([]*recorder{first}, sinks...) {
		frames := s.Frames(t)
		if len(frames) == 0 {
			t.Fatalf("member %d got nothing", i)
		}
		j := decode(t, frames[0])
		if j.Type != "joined" {
			t.Fatalf("member %d: first frame is %q, want joined", i, j.Type)
		}
		if j.Seq > 0 && j.Seq < total {
			sawMiddle = true
		}
		got := describe(t, frames[1:])
		want := seqRun(j.Seq+1, total)
		if !equalStrings(got, want) {
			t.Fatalf("member %d joined at %d: %s", i, j.Seq, diff(got, want))
		}
	}
	if !sawMiddle {
		t.Fatal("no join landed in the middle of the stream: the race was not exercised")
	}
}

// A failing joined callback changes nothing.
func TestJoinCallbackError(t *testing.T) {
	h := newHub(t, hub.Config{})
	s := &recorder{}
	c := h.NewClient("alice", s, now())
	boom := errors.New("store down")
	_, err := h.Join(c, "general", func() ([]byte, uint64, error) { return nil, 0, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Join error = %v, want %v", err, boom)
	}
	if c.IsMember("general") || s.Writes() != 0 || h.Stats().Rooms != 0 {
		t.Fatalf("failed join left traces: member=%v writes=%d rooms=%d", c.IsMember("general"), s.Writes(), h.Stats().Rooms)
	}
	if users, total := h.Presence("general", 10); total != 0 || len(users) != 0 {
		t.Fatalf("presence after failed join: %v %d", users, total)
	}
}

// A join while already a member refreshes the joined point: messages stored
// before it, even if still queued, are not delivered after the new joined
// frame.
func TestRejoinRefreshesJoinedPoint(t *testing.T) {
	h := newHub(t, hub.Config{Workers: 1})
	rs := &roomSeq{room: "general"}

	sa := newGateSink(t)
	a := h.NewClient("alice", sa, now())
	rs.join(t, h, a)
	sb := &recorder{}
	b := h.NewClient("bob", sb, now())
	rs.join(t, h, b) // covers 0; b comes after a in the member list

	sa.arm()
	rs.publish(h) // 1: blocks on a, b not served yet
	sa.waitBlocked(t)
	rs.publish(h)           // 2
	rs.publish(h)           // 3
	res := rs.join(t, h, b) // covers 3
	if !res.Rejoin || res.FirstConn || res.Users != 2 {
		t.Fatalf("rejoin result %+v, want Rejoin, not FirstConn, 2 users", res)
	}
	rs.publish(h) // 4
	sa.open()
	waitFor(t, "b to get message 4", func() bool { return len(sb.Frames(t)) >= 3 })
	h.Stop()

	want := []string{"joined:0", "joined:3", "message:4"}
	if got := describe(t, sb.Frames(t)); !equalStrings(got, want) {
		t.Fatalf("b got %v, want %v", got, want)
	}
	if got := describe(t, sa.Frames(t)); !equalStrings(got, append([]string{"joined:0"}, seqRun(1, 4)...)) {
		t.Fatalf("a got %v", got)
	}
	if users, total := h.Presence("general", 10); total != 2 || !reflect.DeepEqual(users, []string{"alice", "bob"}) {
		t.Fatalf("rejoin changed presence: %v %d", users, total)
	}
}

// Broadcast skips the excluded client, and its seq-0 frames reach members
// whatever their joined point.
func TestBroadcast(t *testing.T) {
	h := newHub(t, hub.Config{})
	rs := &roomSeq{room: "general", latest: 10}
	var sinks [3]*recorder
	var clients [3]*hub.Client
	for i := range sinks {
		sinks[i] = &recorder{}
		clients[i] = h.NewClient("u"+itoa(uint64(i)), sinks[i], now())
		rs.join(t, h, clients[i]) // covers 10
	}
	ev := eventFrame("general", "u1")
	h.Broadcast("general", ev, clients[1], hub.KindTyping)
	rs.publish(h) // 11, after the event
	waitFor(t, "deliveries", func() bool { return h.Stats().Deliveries == 2+3 })
	h.Stop()

	for i, s := range sinks {
		want := []string{"joined:10", "typing", "message:11"}
		if i == 1 {
			want = []string{"joined:10", "message:11"}
		}
		if got := describe(t, s.Frames(t)); !equalStrings(got, want) {
			t.Errorf("member %d got %v, want %v", i, got, want)
		}
	}
	if got := sinks[0].Frames(t)[1].payload; !bytes.Equal(got, ev[2:]) {
		t.Errorf("event payload %q, want %q", got, ev[2:])
	}
}

// Broadcast to a room nobody is in neither delivers nor creates it.
func TestBroadcastNoRoom(t *testing.T) {
	h := newHub(t, hub.Config{})
	s := &recorder{}
	c := h.NewClient("alice", s, now())
	join(t, h, c, "other")
	h.Broadcast("empty", eventFrame("empty", "bob"), nil, hub.KindTyping)
	h.Stop()
	if st := h.Stats(); st.Rooms != 1 || st.Deliveries != 0 {
		t.Fatalf("stats %+v, want 1 room and no delivery", st)
	}
	if s.Writes() != 1 {
		t.Fatalf("a non-member got %d writes, want only its joined frame", s.Writes())
	}
}

type offlineCall struct {
	room        string
	usersBefore int
}

func TestLeave(t *testing.T) {
	h := newHub(t, hub.Config{})
	var calls []offlineCall
	offline := func(room string, usersBefore int) { calls = append(calls, offlineCall{room, usersBefore}) }

	a1s, a2s, bs := &recorder{}, &recorder{}, &recorder{}
	a1 := connect(t, h, "alice", a1s)
	a2 := connect(t, h, "alice", a2s)
	b := connect(t, h, "bob", bs)

	if res := join(t, h, a1, "r"); !res.FirstConn || res.Rejoin || res.Users != 1 {
		t.Fatalf("alice's first connection: %+v", res)
	}
	if res := join(t, h, a2, "r"); res.FirstConn || res.Rejoin || res.Users != 1 {
		t.Fatalf("alice's second connection: %+v, want FirstConn false and 1 user", res)
	}
	if res := join(t, h, b, "r"); !res.FirstConn || res.Users != 2 {
		t.Fatalf("bob: %+v", res)
	}

	if h.Leave(b, "elsewhere", offline) {
		t.Fatal("Leave of a room b is not in returned true")
	}
	if !h.Leave(a1, "r", offline) {
		t.Fatal("Leave of a member returned false")
	}
	if len(calls) != 0 {
		t.Fatalf("offline called while alice still has a connection in the room: %v", calls)
	}
	if h.Leave(a1, "r", offline) {
		t.Fatal("second Leave returned true")
	}
	if a1.IsMember("r") || !a2.IsMember("r") {
		t.Fatal("membership wrong after leave")
	}
	if users, total := h.Presence("r", 10); total != 2 || !reflect.DeepEqual(users, []string{"alice", "bob"}) {
		t.Fatalf("presence after a1 left: %v %d", users, total)
	}

	// a1 no longer receives the room's messages; a2 and b do.
	rs := &roomSeq{room: "r"}
	rs.publish(h)
	waitFor(t, "deliveries", func() bool { return h.Stats().Deliveries == 2 })

	if !h.Leave(a2, "r", offline) {
		t.Fatal("Leave of a2 returned false")
	}
	if want := []offlineCall{{"r", 2}}; !reflect.DeepEqual(calls, want) {
		t.Fatalf("offline calls %v, want %v", calls, want)
	}
	if !h.Leave(b, "r", offline) {
		t.Fatal("Leave of b returned false")
	}
	if want := []offlineCall{{"r", 2}, {"r", 1}}; !reflect.DeepEqual(calls, want) {
		t.Fatalf("offline calls %v, want %v", calls, want)
	}
	if st := h.Stats(); st.Rooms != 2 {
		t.Fatalf("%d rooms, want only alice's and bob's inboxes: %+v", st.Rooms, st)
	}
	h.Stop()
	// The first joined is the inbox's.
	if got := describe(t, a1s.Frames(t)); !equalStrings(got, []string{"joined:0", "joined:0"}) {
		t.Errorf("a1 got %v after leaving", got)
	}
	for name, s := range map[string]*recorder{"a2": a2s, "b": bs} {
		if got := describe(t, s.Frames(t)); !equalStrings(got, []string{"joined:0", "joined:0", "message:1"}) {
			t.Errorf("%s got %v", name, got)
		}
	}
}

func TestTyping(t *testing.T) {
	h := newHub(t, hub.Config{})
	const every = int64(2e9)
	a1 := connect(t, h, "alice", &recorder{})
	a2 := connect(t, h, "alice", &recorder{})
	b := connect(t, h, "bob", &recorder{})
	outsider := connect(t, h, "carol", &recorder{})
	for _, c := range []*hub.Client{a1, a2, b} {
		join(t, h, c, "r")
	}
	join(t, h, outsider, "other")

	t0 := int64(1_000_000_000_000)
	steps := []struct {
		c               *hub.Client
		room            string
		at              int64
		member, forward bool
		why             string
	}{
		{a1, "r", t0, true, true, "first typing"},
		{a1, "r", t0 + every - 1, true, false, "within every"},
		{a2, "r", t0 + 1, true, false, "same user, other connection"},
		{b, "r", t0 + 1, true, true, "another user"},
		{a1, "r", t0 + every, true, true, "every passed"},
		{a1, "r", t0 + every + 1, true, false, "throttled again"},
		{outsider, "r", t0, false, false, "not a member"},
		{a1, "nowhere", t0, false, false, "no such room"},
		{a1, "other", t0, false, false, "member of another room only"},
	}
	for _, s := range steps {
		member, forward := h.Typing(s.c, s.room, s.at, every)
		if member != s.member || forward != s.forward {
			t.Errorf("%s: Typing = (%v, %v), want (%v, %v)", s.why, member, forward, s.member, s.forward)
		}
	}
}

func TestRead(t *testing.T) {
	h := newHub(t, hub.Config{})
	a := h.NewClient("alice", &recorder{}, now())
	b := h.NewClient("bob", &recorder{}, now())
	outsider := h.NewClient("carol", &recorder{}, now())
	join(t, h, a, "r")
	join(t, h, b, "r")
	steps := []struct {
		c               *hub.Client
		seq             uint64
		member, forward bool
	}{
		{a, 5, true, true},
		{a, 5, true, false},
		{a, 3, true, false},
		{a, 6, true, true},
		{b, 2, true, true}, // per user
		{outsider, 9, false, false},
	}
	for i, s := range steps {
		member, forward := h.Read(s.c, "r", s.seq)
		if member != s.member || forward != s.forward {
			t.Errorf("step %d (%s seq %d): Read = (%v, %v), want (%v, %v)", i, s.c.User, s.seq, member, forward, s.member, s.forward)
		}
	}
	if member, forward := h.Read(a, "nowhere", 1); member || forward {
		t.Errorf("Read in a room that does not exist = (%v, %v)", member, forward)
	}
}

func TestPresence(t *testing.T) {
	h := newHub(t, hub.Config{})
	for _, u := range []string{"dave", "bob", "alice", "carol", "bob"} {
		join(t, h, connect(t, h, u, &recorder{}), "r")
	}
	users, total := h.Presence("r", 10)
	if total != 4 || !reflect.DeepEqual(users, []string{"alice", "bob", "carol", "dave"}) {
		t.Fatalf("Presence = %v, %d; want 4 distinct users, sorted", users, total)
	}
	users, total = h.Presence("r", 2)
	if total != 4 || !reflect.DeepEqual(users, []string{"alice", "bob"}) {
		t.Fatalf("Presence capped at 2 = %v, %d", users, total)
	}
	users, total = h.Presence("r", 3)
	if total != 4 || !reflect.DeepEqual(users, []string{"alice", "bob", "carol"}) {
		t.Fatalf("Presence capped at 3 = %v, %d", users, total)
	}
	users, total = h.Presence("r", 4)
	if total != 4 || len(users) != 4 {
		t.Fatalf("Presence capped at exactly the total = %v, %d", users, total)
	}
	users, total = h.Presence("nowhere", 10)
	if total != 0 || users == nil || len(users) != 0 {
		t.Fatalf("Presence of a missing room = %#v, %d; want an empty non-nil list", users, total)
	}
	if h.PresenceMaxMembers() != 0 {
		t.Fatal("PresenceMaxMembers not the configured value")
	}
	h2 := newHub(t, hub.Config{PresenceMaxMembers: 1000})
	if h2.PresenceMaxMembers() != 1000 {
		t.Fatalf("PresenceMaxMembers = %d, want 1000", h2.PresenceMaxMembers())
	}
}

func TestRemove(t *testing.T) {
	h := newHub(t, hub.Config{})
	var calls []offlineCall
	offline := func(room string, usersBefore int) { calls = append(calls, offlineCall{room, usersBefore}) }

	as, bs := &recorder{}, &recorder{}
	a := h.NewClient("alice", as, now())
	b := h.NewClient("bob", bs, now())
	for _, r := range []string{"r1", "r2", "shared", "@alice"} {
		join(t, h, a, r)
	}
	join(t, h, b, "shared")
	if st := h.Stats(); st.Rooms != 4 || st.Connections != 2 {
		t.Fatalf("stats before remove: %+v", st)
	}
	if n := a.RoomCount(); n != 3 {
		t.Fatalf("RoomCount = %d, want 3 (inbox not counted)", n)
	}

	h.Remove(a, offline)
	got := map[string]int{}
	for _, c := range calls {
		got[c.room] = c.usersBefore
	}
	if want := map[string]int{"r1": 1, "r2": 1, "shared": 2, "@alice": 1}; len(calls) != 4 || !reflect.DeepEqual(got, want) {
		t.Fatalf("offline calls %v, want one per room: %v", calls, want)
	}
	if st := h.Stats(); st.Rooms != 1 || st.Connections != 1 {
		t.Fatalf("stats after remove: %+v, want 1 room (shared) and 1 connection", st)
	}
	if a.IsMember("shared") || a.RoomCount() != 0 {
		t.Fatal("removed client still a member")
	}

	h.Remove(a, offline)
	if len(calls) != 4 || h.Stats().Connections != 1 {
		t.Fatalf("second Remove had effects: calls %v, stats %+v", calls, h.Stats())
	}

	// A join after removal does not bring the client back.
	res, err := h.Join(a, "r3", func() ([]byte, uint64, error) { return joinedFrame("r3", 0), 0, nil })
	if err != nil || res != (hub.JoinResult{}) || a.IsMember("r3") || h.Stats().Rooms != 1 {
		t.Fatalf("join after remove: %+v %v member=%v stats %+v", res, err, a.IsMember("r3"), h.Stats())
	}

	(&roomSeq{room: "shared"}).publish(h)
	waitFor(t, "delivery to b", func() bool { return h.Stats().Deliveries == 1 })

	h.Remove(b, nil)
	if st := h.Stats(); st.Rooms != 0 || st.Connections != 0 {
		t.Fatalf("stats after removing everyone: %+v", st)
	}
	h.Stop()
	if got := describe(t, as.Frames(t)); len(got) != 4 {
		t.Errorf("removed client got %v, want only its 4 joined frames", got)
	}
	if got := describe(t, bs.Frames(t)); !equalStrings(got, []string{"joined:0", "message:1"}) {
		t.Errorf("b got %v", got)
	}
	// The registry is empty: Each visits nobody.
	n := 0
	h.Each(func(*hub.Client) { n++ })
	if n != 0 {
		t.Errorf("Each visited %d clients after all were removed", n)
	}
}

// A Publish to a room nobody is in stores (the callback runs) and leaves no
// room behind.
func TestPublishEmptyRoom(t *testing.T) {
	h := newHub(t, hub.Config{})
	called := 0
	h.Publish("@bob", func() ([]byte, uint64, bool) {
		called++
		return messageFrame("@bob", 1), 1, true
	})
	h.Publish("@bob", func() ([]byte, uint64, bool) { called++; return nil, 0, false })
	if called != 2 {
		t.Fatalf("store callback ran %d times, want 2", called)
	}
	h.Stop()
	if st := h.Stats(); st.Rooms != 0 || st.Deliveries != 0 {
		t.Fatalf("stats %+v, want no room and no delivery", st)
	}
}

func TestEach(t *testing.T) {
	h := newHub(t, hub.Config{})
	want := map[*hub.Client]bool{}
	for i := 0; i < 200; i++ {
		want[h.NewClient("u"+itoa(uint64(i)), &recorder{}, now())] = true
	}
	seen := map[*hub.Client]bool{}
	h.Each(func(c *hub.Client) {
		if seen[c] {
			t.Fatalf("Each visited %s twice", c.User)
		}
		seen[c] = true
	})
	if !reflect.DeepEqual(seen, want) || h.Stats().Connections != 200 {
		t.Fatalf("Each visited %d of %d clients; Connections=%d", len(seen), len(want), h.Stats().Connections)
	}
}

// A member that leaves while messages are queued for it (the worker is
// stalled on another member's socket) gets none of them.
func TestLeaveDropsQueuedDeliveries(t *testing.T) {
	h := newHub(t, hub.Config{Workers: 1})
	rs := &roomSeq{room: "r"}
	sa := newGateSink(t)
	rs.join(t, h, h.NewClient("alice", sa, now()))
	sb := &recorder{}
	b := h.NewClient("bob", sb, now())
	rs.join(t, h, b)

	sa.arm()
	rs.publish(h) // 1: stalls on alice, bob is next in the member list
	sa.waitBlocked(t)
	rs.publish(h) // 2
	if !h.Leave(b, "r", nil) {
		t.Fatal("Leave returned false")
	}
	rs.publish(h) // 3
	sa.open()
	h.Stop()

	if got := describe(t, sb.Frames(t)); !equalStrings(got, []string{"joined:0"}) {
		t.Fatalf("bob got %v after leaving, want only his joined frame", got)
	}
	if got := describe(t, sa.Frames(t)); !equalStrings(got, append([]string{"joined:0"}, seqRun(1, 3)...)) {
		t.Fatalf("alice got %v", got)
	}
}

// TestLastConnOnceUnderConcurrentCloses closes every connection of users
// with several connections in a room at once, and leaves meanwhile: each
// user's last connection out must be reported exactly once. The hub finds
// a user's other connections through its inbox, so a close that left the
// inbox before the room would hide a connection still in the room, and a
// user would go offline twice or never.
func TestLastConnOnceUnderConcurrentCloses(t *testing.T) {
	const users, conns = 40, 3
	for round := 0; round < 20; round++ {
		h := newHub(t, hub.Config{})
		var mu sync.Mutex
		offline := map[string]int{}
		var all []*hub.Client
		for u := 0; u < users; u++ {
			for i := 0; i < conns; i++ {
				c := connect(t, h, fmt.Sprint("u", u), &recorder{})
				join(t, h, c, "r")
				join(t, h, c, "s")
				all = append(all, c)
			}
		}
		if _, total := h.Presence("r", 0); total != users {
			t.Fatalf("%d users in r, want %d", total, users)
		}
		var wg sync.WaitGroup
		for i, c := range all {
			wg.Add(1)
			go func() {
				defer wg.Done()
				note := func(room string, _ int) {
					mu.Lock()
					offline[room+"/"+c.User]++
					mu.Unlock()
				}
				if i%2 == 0 {
					h.Leave(c, "r", note)
				}
				h.Remove(c, note)
			}()
		}
		wg.Wait()
		for u := 0; u < users; u++ {
			for _, room := range []string{"r", "s"} {
				if n := offline[fmt.Sprint(room, "/u", u)]; n != 1 {
					t.Fatalf("round %d: u%d's last connection left %s %d times, want once", round, u, room, n)
				}
			}
		}
		if st := h.Stats(); st.Rooms != 0 || st.Memberships != 0 {
			t.Fatalf("after every close: %+v", st)
		}
	}
}
