package history

import (
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/chatgw/gateway/codec"
)

// TestMemory runs the Store conformance suite against the memory store.
func TestMemory(t *testing.T) {
	testStore(t, func(t *testing.T, size int) Store {
		m := NewMemory(size, nil)
		t.Cleanup(func() { _ = m.Close() })
		return m
	})
}

// testStore is the conformance suite every Store implementation must pass
// (a Redis store runs it too). newStore returns a store keeping size
// messages per room, with a fresh, empty history: a new life, so a new
// epoch (for Redis, a flushed database).
func testStore(t *testing.T, newStore func(t *testing.T, size int) Store) {
	t.Run("SeqStartsAtOneAndGrowsByOne", func(t *testing.T) { testSeq(t, newStore) })
	t.Run("EmptyRoom", func(t *testing.T) { testEmptyRoom(t, newStore) })
	t.Run("RangeAllHeld", func(t *testing.T) { testRangeAllHeld(t, newStore) })
	t.Run("RangeSomeLost", func(t *testing.T) { testRangeSomeLost(t, newStore) })
	t.Run("RingWrapAround", func(t *testing.T) { testWrapAround(t, newStore) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, newStore) })
	t.Run("ConcurrentRooms", func(t *testing.T) { testConcurrentRooms(t, newStore) })
	t.Run("Epoch", func(t *testing.T) { testEpoch(t, newStore) })
}

// enc builds a real message frame and counts its calls.
type enc struct {
	room  string
	calls int
	last  []byte
}

// The text does not depend on seq or ts: an Encoder may only put them in
// the message's seq and ts fields (the Redis store relies on it).
func (e *enc) encode(seq uint64, ts int64) []byte {
	e.calls++
	text := "message in " + e.room
	f := codec.NewFrame()
	f.B = codec.AppendMessage(f.B, &codec.Message{Room: e.room, Seq: seq, TS: ts, From: "alice", Text: &text})
	e.last = f.Owned()
	f.Release()
	return e.last
}

type stored struct {
	Type string `json:"type"`
	Room string `json:"room"`
	Seq  uint64 `json:"seq"`
	TS   int64  `json:"ts"`
	Text string `json:"text"`
}

// checkMsg checks that m is the message of room at seq, its frame built by
// the encoder with m's own seq and ts.
func checkMsg(t *testing.T, room string, m Message, seq uint64) {
	t.Helper()
	if m.Seq != seq {
		t.Fatalf("message seq %d, want %d", m.Seq, seq)
	}
	var s stored
	if err := json.Unmarshal(m.Payload(), &s); err != nil {
		t.Fatalf("seq %d: payload %q: %v", seq, m.Payload(), err)
	}
	if s.Type != "message" || s.Room != room || s.Seq != seq || s.TS != m.TS || s.Text != "message in "+room {
		t.Fatalf("seq %d: stored frame %+v does not match message %d ts %d of %s", seq, s, m.Seq, m.TS, room)
	}
}

func seqs(msgs []Message) []uint64 {
	out := []uint64{}
	for _, m := range msgs {
		out = append(out, m.Seq)
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	out := []uint64{}
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// appendN appends n messages to room without key and checks their seq.
func appendN(t *testing.T, s Store, room string, n int) {
	t.Helper()
	e := &enc{room: room}
	for i := 0; i < n; i++ {
		msg, ack, dup, err := s.Append(room, "alice", "", e.encode)
		if err != nil || dup {
			t.Fatalf("append to %s: dup=%v err=%v", room, dup, err)
		}
		if ack.Seq != msg.Seq || ack.Room != room || ack.TS != msg.TS {
			t.Fatalf("ack %+v does not match message seq %d ts %d", ack, msg.Seq, msg.TS)
		}
	}
}

func testSeq(t *testing.T, newStore func(*testing.T, int) Store) {
	s := newStore(t, 100)
	e := &enc{room: "general"}
	start := time.Now().UnixMilli()
	for want := uint64(1); want <= 5; want++ {
		msg, ack, dup, err := s.Append("general", "alice", "", e.encode)
		if err != nil || dup {
			t.Fatalf("append: dup=%v err=%v", dup, err)
		}
		if msg.Seq != want || ack.Seq != want {
			t.Fatalf("append %d: message seq %d, ack seq %d", want, msg.Seq, ack.Seq)
		}
		if ack.Room != "general" || ack.TS != msg.TS {
			t.Fatalf("ack %+v does not match the message (ts %d)", ack, msg.TS)
		}
		if msg.TS < start-1000 || msg.TS > time.Now().UnixMilli()+1000 {
			t.Fatalf("ts %d is not the current Unix time in ms (%d)", msg.TS, start)
		}
		// The encoder may run twice (the Redis store first builds a
		// template); the stored frame is its final one.
		if string(msg.Frame) != string(e.last) || e.calls > 2*int(want) {
			t.Fatalf("the stored frame is not the one the encoder built")
		}
		checkMsg(t, "general", msg, want)
	}
	// Another room has its own seq.
	msg, _, _, err := s.Append("random", "bob", "", (&enc{room: "random"}).encode)
	if err != nil || msg.Seq != 1 {
		t.Fatalf("first message of another room: seq %d, err %v", msg.Seq, err)
	}
	p, err := s.Range("general", 0, 0, 0)
	if err != nil || p.Latest != 5 {
		t.Fatalf("latest of general = %d (%v), want 5", p.Latest, err)
	}
	p, err = s.Range("general", 0, math.MaxUint64, 100)
	if err != nil {
		t.Fatal(err)
	}
	msgs := p.Messages
	var prevTS int64
	for i, m := range msgs {
		checkMsg(t, "general", m, uint64(i+1))
		if m.TS < prevTS {
			t.Fatalf("ts went backwards at seq %d", m.Seq)
		}
		prevTS = m.TS
	}
	if len(msgs) != 5 {
		t.Fatalf("Range returned %d messages, want 5", len(msgs))
	}
}

func testEmptyRoom(t *testing.T, newStore func(*testing.T, int) Store) {
	s := newStore(t, 10)
	appendN(t, s, "other", 3) // other rooms do not leak in
	for _, q := range []struct{ after, before uint64 }{{0, 0}, {0, math.MaxUint64}, {0, 5}} {
		p, err := s.Range("nobody", q.after, q.before, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Messages) != 0 || p.Latest != 0 || p.Epoch == "" || !p.Complete {
			t.Fatalf("Range(empty room, %d, %d) = %d msgs, latest %d, epoch %q, complete %v; want none, 0, an epoch, true",
				q.after, q.before, len(p.Messages), p.Latest, p.Epoch, p.Complete)
		}
	}
	// The first message of a room is seq 1 even after Range looked at it.
	msg, _, _, err := s.Append("nobody", "alice", "", (&enc{room: "nobody"}).encode)
	if err != nil || msg.Seq != 1 {
		t.Fatalf("first append after Range: seq %d, err %v", msg.Seq, err)
	}
}

// rangeCase is one Range query and what it must answer.
type rangeCase struct {
	after, before uint64
	limit         int
	want          []uint64
	complete      bool
}

func checkRange(t *testing.T, s Store, room string, latest uint64, epoch string, cases []rangeCase) {
	t.Helper()
	for _, c := range cases {
		p, err := s.Range(room, c.after, c.before, c.limit)
		if err != nil {
			t.Fatalf("Range(%d, %d, %d): %v", c.after, c.before, c.limit, err)
		}
		if !equalSeqs(seqs(p.Messages), c.want) || p.Complete != c.complete {
			t.Errorf("Range(after %d, before %d, limit %d) = %v complete %v; want %v complete %v",
				c.after, c.before, c.limit, seqs(p.Messages), p.Complete, c.want, c.complete)
		}
		if p.Latest != latest || p.Epoch != epoch {
			t.Errorf("Range(%d, %d, %d): latest %d epoch %q, want %d %q", c.after, c.before, c.limit, p.Latest, p.Epoch, latest, epoch)
		}
		for _, m := range p.Messages {
			checkMsg(t, room, m, m.Seq)
		}
	}
}

// Range with every message still held: after and before are exclusive, the
// newest limit messages come back ascending, and complete says whether
// every message of the range was returned (false when limit cut it short:
// the gateway treats complete as "nothing missing" when resuming).
func testRangeAllHeld(t *testing.T, newStore func(*testing.T, int) Store) {
	s := newStore(t, 10)
	appendN(t, s, "r", 6)
	p, _ := s.Range("r", 0, 0, 0)
	epoch := p.Epoch
	max := uint64(math.MaxUint64)
	checkRange(t, s, "r", 6, epoch, []rangeCase{
		{0, max, 10, seqRange(1, 6), true},
		{0, max, 6, seqRange(1, 6), true},
		{0, 7, 10, seqRange(1, 6), true},
		{0, 1000, 10, seqRange(1, 6), true},
		{2, 5, 10, []uint64{3, 4}, true},      // both bounds exclusive
		{0, 4, 10, []uint64{1, 2, 3}, true},   // before only
		{3, max, 10, []uint64{4, 5, 6}, true}, // after only
		{0, max, 2, []uint64{5, 6}, false},    // newest limit, ascending
		{1, 6, 2, []uint64{4, 5}, false},
		{1, 5, 3, []uint64{2, 3, 4}, true}, // limit exactly the range
		{5, max, 10, []uint64{6}, true},
		{6, max, 10, []uint64{}, true}, // nothing after latest
		{2, 3, 10, []uint64{}, true},   // empty range
		{3, 3, 10, []uint64{}, true},
		{0, 0, 0, []uint64{}, true}, // the gateway's "latest and epoch" query
	})
	// limit <= 0 returns no messages, whatever the range.
	for _, limit := range []int{0, -1} {
		p, err := s.Range("r", 0, max, limit)
		if err != nil || len(p.Messages) != 0 || p.Latest != 6 || p.Epoch != epoch {
			t.Errorf("Range(limit %d) = %v latest %d epoch %q err %v; want no messages, 6, %q", limit, seqs(p.Messages), p.Latest, p.Epoch, err, epoch)
		}
	}
	// An after past every message selects nothing, even at the top of the
	// seq space.
	for _, after := range []uint64{7, 1000, max - 1, max} {
		p, err := s.Range("r", after, max, 10)
		if err != nil || len(p.Messages) != 0 || p.Latest != 6 {
			t.Errorf("Range(after %d) = %v latest %d err %v; want no messages", after, seqs(p.Messages), p.Latest, err)
		}
	}
}

// Range once the oldest messages have been dropped: complete is false as
// soon as one message of the range is no longer held.
func testRangeSomeLost(t *testing.T, newStore func(*testing.T, int) Store) {
	s := newStore(t, 5)
	appendN(t, s, "r", 8) // holds 4..8
	p, _ := s.Range("r", 0, 0, 0)
	epoch := p.Epoch
	max := uint64(math.MaxUint64)
	checkRange(t, s, "r", 8, epoch, []rangeCase{
		{0, max, 10, seqRange(4, 8), false},
		{2, max, 10, seqRange(4, 8), false},
		{3, max, 10, seqRange(4, 8), true}, // 4..8: all held
		{3, max, 5, seqRange(4, 8), true},
		{5, max, 10, []uint64{6, 7, 8}, true},
		{5, 8, 10, []uint64{6, 7}, true},
		{0, 6, 10, []uint64{4, 5}, false},
		{0, 4, 10, []uint64{}, false}, // 1..3: all lost
		{1, 3, 10, []uint64{}, false},
		{0, max, 2, []uint64{7, 8}, false},
		{3, max, 2, []uint64{7, 8}, false}, // held but cut short by limit
		{6, max, 2, []uint64{7, 8}, true},
		{8, max, 10, []uint64{}, true},
		{1, 2, 10, []uint64{}, true}, // an empty range misses nothing
		{2, 2, 10, []uint64{}, true},
	})
}

// A ring of 3 after 10 appends holds 8, 9, 10, in order, whatever the
// ring's internal rotation; checked after every append.
func testWrapAround(t *testing.T, newStore func(*testing.T, int) Store) {
	s := newStore(t, 3)
	e := &enc{room: "w"}
	max := uint64(math.MaxUint64)
	for n := uint64(1); n <= 10; n++ {
		msg, _, _, err := s.Append("w", "alice", "", e.encode)
		if err != nil || msg.Seq != n {
			t.Fatalf("append %d: seq %d err %v", n, msg.Seq, err)
		}
		oldest := uint64(1)
		if n > 3 {
			oldest = n - 2
		}
		p, err := s.Range("w", 0, max, 10)
		if err != nil || p.Latest != n || !equalSeqs(seqs(p.Messages), seqRange(oldest, n)) || p.Complete != (oldest == 1) {
			t.Fatalf("after %d appends: Range = %v latest %d complete %v err %v; want %v latest %d complete %v",
				n, seqs(p.Messages), p.Latest, p.Complete, err, seqRange(oldest, n), n, oldest == 1)
		}
		for _, m := range p.Messages {
			checkMsg(t, "w", m, m.Seq)
		}
	}
	p, _ := s.Range("w", 0, 0, 0)
	checkRange(t, s, "w", 10, p.Epoch, []rangeCase{
		{0, max, 10, []uint64{8, 9, 10}, false},
		{7, max, 10, []uint64{8, 9, 10}, true},
		{6, max, 10, []uint64{8, 9, 10}, false},
		{8, max, 10, []uint64{9, 10}, true},
		{0, 10, 10, []uint64{8, 9}, false},
		{7, 10, 10, []uint64{8, 9}, true},
		{8, 10, 10, []uint64{9}, true},
		{0, 8, 10, []uint64{}, false},
		{0, max, 1, []uint64{10}, false},
		{7, 10, 1, []uint64{9}, false},
	})
}

func testIdempotency(t *testing.T, newStore func(*testing.T, int) Store) {
	s := newStore(t, 100)
	e := &enc{room: "r"}
	appendN(t, s, "r", 2)

	first, ack, dup, err := s.Append("r", "alice", "k1", e.encode)
	if err != nil || dup || first.Seq != 3 {
		t.Fatalf("first keyed append: seq %d dup %v err %v", first.Seq, dup, err)
	}
	calls := e.calls

	// The same user and key: the original ack, nothing stored or encoded.
	for i := 0; i < 2; i++ {
		msg, again, dup, err := s.Append("r", "alice", "k1", e.encode)
		if err != nil || !dup {
			t.Fatalf("repeated key: dup %v err %v, want dup", dup, err)
		}
		if again != ack {
			t.Fatalf("repeated key: ack %+v, want the original %+v", again, ack)
		}
		if msg.Seq != 0 || msg.Frame != nil {
			t.Fatalf("repeated key returned a message: %+v", msg)
		}
	}
	if e.calls != calls {
		t.Fatalf("the encoder ran for a duplicate")
	}
	if p, _ := s.Range("r", 0, 0, 0); p.Latest != 3 {
		t.Fatalf("latest %d after duplicates, want 3", p.Latest)
	}

	// The key is the user's, whatever the room: a retry of a message that
	// was accepted gets its ack, not a copy elsewhere.
	_, other, dup, err := s.Append("elsewhere", "alice", "k1", (&enc{room: "elsewhere"}).encode)
	if err != nil || !dup || other != ack {
		t.Fatalf("same user and key in another room: ack %+v dup %v err %v; want the original %+v", other, dup, err, ack)
	}

	// Another user with the same key is independent.
	msg, bobAck, dup, err := s.Append("r", "bob", "k1", e.encode)
	if err != nil || dup || msg.Seq != 4 || bobAck.Seq != 4 {
		t.Fatalf("another user, same key: seq %d dup %v err %v; want stored as 4", msg.Seq, dup, err)
	}
	// And now bob's key is taken too, with his own ack.
	if _, again, dup, _ := s.Append("r", "bob", "k1", e.encode); !dup || again != bobAck {
		t.Fatalf("bob's repeat: ack %+v dup %v, want %+v", again, dup, bobAck)
	}

	// Another key of the same user is a new message.
	msg, _, dup, err = s.Append("r", "alice", "k2", e.encode)
	if err != nil || dup || msg.Seq != 5 {
		t.Fatalf("alice's second key: seq %d dup %v err %v", msg.Seq, dup, err)
	}
	// Without a key, nothing is deduplicated.
	for want := uint64(6); want <= 7; want++ {
		msg, _, dup, err = s.Append("r", "alice", "", e.encode)
		if err != nil || dup || msg.Seq != want {
			t.Fatalf("keyless append: seq %d dup %v err %v, want %d", msg.Seq, dup, err, want)
		}
	}
	p, _ := s.Range("r", 0, math.MaxUint64, 100)
	if p.Latest != 7 || !equalSeqs(seqs(p.Messages), seqRange(1, 7)) {
		t.Fatalf("history %v latest %d, want 1..7", seqs(p.Messages), p.Latest)
	}
}

// Appends to different rooms at once (the race detector watches); each
// room's seq is still 1..n in order.
func testConcurrentRooms(t *testing.T, newStore func(*testing.T, int) Store) {
	const rooms, n = 8, 200
	s := newStore(t, n)
	var wg sync.WaitGroup
	errs := make(chan error, 2*rooms)
	for r := 0; r < rooms; r++ {
		room := fmt.Sprintf("room-%d", r)
		wg.Add(2)
		go func() {
			defer wg.Done()
			e := &enc{room: room}
			for i := 1; i <= n; i++ {
				key := ""
				if i%2 == 0 {
					key = fmt.Sprintf("%s-%d", room, i)
				}
				msg, _, dup, err := s.Append(room, "alice", key, e.encode)
				if err != nil || dup || msg.Seq != uint64(i) {
					errs <- fmt.Errorf("%s: append %d got seq %d dup %v err %v", room, i, msg.Seq, dup, err)
					return
				}
			}
		}()
		go func() { // a reader racing the writer
			defer wg.Done()
			for i := 0; i < n; i++ {
				p, err := s.Range(room, 0, math.MaxUint64, 10)
				if err != nil {
					errs <- err
					return
				}
				msgs, latest := p.Messages, p.Latest
				if len(msgs) > 0 && msgs[len(msgs)-1].Seq > latest {
					errs <- fmt.Errorf("%s: message %d above latest %d", room, msgs[len(msgs)-1].Seq, latest)
					return
				}
				for j := 1; j < len(msgs); j++ {
					if msgs[j].Seq != msgs[j-1].Seq+1 {
						errs <- fmt.Errorf("%s: Range not contiguous: %v", room, seqs(msgs))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for r := 0; r < rooms; r++ {
		room := fmt.Sprintf("room-%d", r)
		p, err := s.Range(room, 0, math.MaxUint64, n)
		if err != nil || p.Latest != n || !p.Complete || !equalSeqs(seqs(p.Messages), seqRange(1, n)) {
			t.Fatalf("%s: %d messages, latest %d, complete %v, err %v", room, len(p.Messages), p.Latest, p.Complete, err)
		}
		for _, m := range p.Messages {
			checkMsg(t, room, m, m.Seq)
		}
	}
}

// The epoch is the same for every room and call of one store, and differs
// between two stores (two lives of history).
func testEpoch(t *testing.T, newStore func(*testing.T, int) Store) {
	s := newStore(t, 10)
	epochs := map[string]string{}
	for _, room := range []string{"a", "b", "never"} {
		p, err := s.Range(room, 0, 0, 0)
		if err != nil || p.Epoch == "" {
			t.Fatalf("epoch of %s %q err %v", room, p.Epoch, err)
		}
		epochs[room] = p.Epoch
	}
	appendN(t, s, "a", 3)
	appendN(t, s, "b", 1)
	// A room's epoch names the life of its history: messages do not
	// change it, and neither does asking again.
	for _, room := range []string{"a", "b", "never"} {
		if p, _ := s.Range(room, 0, math.MaxUint64, 10); p.Epoch != epochs[room] {
			t.Fatalf("epoch of %s = %q after appends, want %q", room, p.Epoch, epochs[room])
		}
	}
	// A new life (a restarted process; a Redis that lost its data) has
	// a new epoch.
	s2 := newStore(t, 10)
	p2, err := s2.Range("a", 0, 0, 0)
	if err != nil || p2.Epoch == "" || p2.Epoch == epochs["a"] {
		t.Fatalf("second store's epoch %q (first %q), err %v; want a different one", p2.Epoch, epochs["a"], err)
	}
}

// fakeClock is a clock the test moves by hand; the key sweeper reads it
// from its own goroutine.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A key is remembered for KeyTTL, then the same key stores a new message;
// timestamps come from the store's clock.
func TestMemoryKeyTTL(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_763_779_200_123)}
	m := NewMemory(10, clock.Now)
	t.Cleanup(func() { _ = m.Close() })
	e := &enc{room: "r"}

	msg, ack, dup, err := m.Append("r", "alice", "k", e.encode)
	if err != nil || dup || msg.Seq != 1 {
		t.Fatalf("first append: seq %d dup %v err %v", msg.Seq, dup, err)
	}
	if msg.TS != 1_763_779_200_123 || ack.TS != msg.TS {
		t.Fatalf("ts %d (ack %d), want the clock's 1763779200123", msg.TS, ack.TS)
	}

	clock.Advance(KeyTTL - time.Millisecond)
	if _, again, dup, _ := m.Append("r", "alice", "k", e.encode); !dup || again != ack {
		t.Fatalf("just within KeyTTL: dup %v ack %+v, want the original %+v", dup, again, ack)
	}

	clock.Advance(2 * time.Millisecond) // KeyTTL + 1 ms after the first
	msg, ack2, dup, err := m.Append("r", "alice", "k", e.encode)
	if err != nil || dup || msg.Seq != 2 {
		t.Fatalf("after KeyTTL: seq %d dup %v err %v; want a new message 2", msg.Seq, dup, err)
	}
	if want := clock.Now().UnixMilli(); msg.TS != want || ack2.TS != want {
		t.Fatalf("ts %d, want %d", msg.TS, want)
	}
	// The key now names the new message, for another KeyTTL.
	clock.Advance(KeyTTL / 2)
	if _, again, dup, _ := m.Append("r", "alice", "k", e.encode); !dup || again != ack2 {
		t.Fatalf("key renewed by the new message: dup %v ack %+v, want %+v", dup, again, ack2)
	}
}

// The sweeper forgets expired keys (and only those).
func TestMemoryKeySweep(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	m := NewMemory(10, clock.Now)
	t.Cleanup(func() { _ = m.Close() })
	e := &enc{room: "r"}
	for _, k := range []string{"old1", "old2"} {
		if _, _, _, err := m.Append("r", "alice", k, e.encode); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(KeyTTL / 2)
	if _, _, _, err := m.Append("r", "alice", "young", e.encode); err != nil {
		t.Fatal(err)
	}
	clock.Advance(KeyTTL/2 + time.Millisecond)
	m.keys.sweep(clock.Now())
	m.keys.mu.Lock()
	n := len(m.keys.m)
	_, young := m.keys.m[keyOf("alice", "young")]
	m.keys.mu.Unlock()
	if n != 1 || !young {
		t.Fatalf("after the sweep %d keys remain (young kept: %v), want only the young one", n, young)
	}
}

// Two stores have different epochs, each stable, and Close is idempotent.
func TestMemoryEpochAndClose(t *testing.T) {
	a, b := NewMemory(1, nil), NewMemory(1, nil)
	if a.Epoch() == "" || a.Epoch() == b.Epoch() {
		t.Fatalf("epochs %q and %q, want two different non-empty ones", a.Epoch(), b.Epoch())
	}
	if p, _ := a.Range("x", 0, 0, 0); p.Epoch != a.Epoch() {
		t.Fatalf("Range epoch %q, Epoch() %q", p.Epoch, a.Epoch())
	}
	for _, s := range []*Memory{a, b} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A store keeping no history still assigns seqs and reports every range as
// lost, except empty ones.
func TestMemorySizeZero(t *testing.T) {
	m := NewMemory(0, nil)
	t.Cleanup(func() { _ = m.Close() })
	appendN(t, m, "r", 3)
	p, err := m.Range("r", 0, math.MaxUint64, 10)
	if err != nil || len(p.Messages) != 0 || p.Latest != 3 || p.Complete {
		t.Fatalf("Range = %v latest %d complete %v err %v; want nothing, 3, incomplete", seqs(p.Messages), p.Latest, p.Complete, err)
	}
	if p, _ := m.Range("r", 3, math.MaxUint64, 10); !p.Complete {
		t.Fatal("Range after latest is not complete")
	}
}

func TestMemoryMessagesCountsHeld(t *testing.T) {
	m := NewMemory(4, nil)
	t.Cleanup(func() { _ = m.Close() })
	appendN(t, m, "a", 3)
	appendN(t, m, "b", 9) // wraps: only 4 held
	if got := m.Messages(); got != 7 {
		t.Fatalf("Messages = %d, want 3 + 4", got)
	}
	z := NewMemory(0, nil)
	t.Cleanup(func() { _ = z.Close() })
	appendN(t, z, "a", 3)
	if got := z.Messages(); got != 0 {
		t.Fatalf("size 0: Messages = %d, want 0", got)
	}
}

// BenchmarkAppendMemory: a message stored by the embedded store, the figure
// beside the cluster's BenchmarkPublishRedis (gateway/cluster).
func BenchmarkAppendMemory(b *testing.B) {
	m := NewMemory(100, nil)
	b.Cleanup(func() { _ = m.Close() })
	e := &enc{room: "r"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, _, err := m.Append("r", "u", "", e.encode); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
