package history

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

// idleUnless is an IfIdle that treats every room but the ones in use as
// idle, standing in for the hub's.
func idleUnless(inUse ...string) func(string, func()) bool {
	busy := map[string]bool{}
	for _, r := range inUse {
		busy[r] = true
	}
	return func(room string, drop func()) bool {
		if busy[room] {
			return false
		}
		drop()
		return true
	}
}

// sumRings recounts what the rings hold, to check the store's counters.
func sumRings(m *Memory) (bytes, msgs, rooms int64) {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for _, r := range s.rooms {
			bytes += r.bytes
			msgs += int64(r.n)
			rooms++
		}
		s.mu.Unlock()
	}
	return
}

// TestMemoryBounded runs the conformance suite against a store with a byte
// cap and a TTL far from being reached: the bounds change nothing else.
func TestMemoryBounded(t *testing.T) {
	testStore(t, func(t *testing.T, size int) Store {
		m := NewMemoryWith(MemoryConfig{Size: size, MaxBytes: 1 << 30, TTL: time.Hour, IfIdle: idleUnless()})
		t.Cleanup(func() { _ = m.Close() })
		return m
	})
}

// Over MaxBytes, the rooms idle longest go first, rooms in use stay, and
// the store never holds much more than the cap.
func TestMemoryBudgetDropsIdleRoomsFirst(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	const maxBytes = 64 << 10
	m := NewMemoryWith(MemoryConfig{Size: 10, MaxBytes: maxBytes, Now: clock.Now, IfIdle: idleUnless("busy")})
	t.Cleanup(func() { _ = m.Close() })
	appendN(t, m, "busy", 3)
	busy, _ := m.Range("busy", 0, math.MaxUint64, 0)
	busyEpoch := busy.Epoch
	var peak int64
	for i := 0; i < 400; i++ {
		clock.Advance(time.Second)
		appendN(t, m, fmt.Sprintf("room-%03d", i), 2)
		peak = max(peak, m.Bytes())
	}
	if peak > maxBytes+2048 {
		t.Fatalf("store peaked at %d bytes, cap %d", peak, maxBytes)
	}
	if m.Dropped() == 0 {
		t.Fatal("nothing was dropped: the test did not reach the cap")
	}
	// The busy room was idle longest but is in use: kept whole.
	p, _ := m.Range("busy", 0, math.MaxUint64, 10)
	if len(p.Messages) != 3 || p.Latest != 3 || p.Epoch != busyEpoch || !p.Complete {
		t.Fatalf("busy room: %v latest %d epoch %q complete %v; want 1..3 under %q", seqs(p.Messages), p.Latest, p.Epoch, p.Complete, busyEpoch)
	}
	// The newest room is kept; the oldest idle one is gone, and comes back
	// at seq 1 under another epoch, so a resume from it is not recovered.
	if p, _ := m.Range("room-399", 0, math.MaxUint64, 0); p.Latest != 2 {
		t.Fatalf("newest room latest %d, want 2", p.Latest)
	}
	p0, _ := m.Range("room-000", 0, math.MaxUint64, 0)
	if p0.Latest != 0 || p0.Epoch == busyEpoch {
		t.Fatalf("oldest room: latest %d epoch %q; want dropped (0) under an epoch other than %q", p0.Latest, p0.Epoch, busyEpoch)
	}
	appendN(t, m, "room-000", 1)
	if p, _ := m.Range("room-000", 0, math.MaxUint64, 0); p.Latest != 1 || p.Epoch == busyEpoch {
		t.Fatalf("re-created room: latest %d epoch %q", p.Latest, p.Epoch)
	}
	bytes, msgsHeld, rooms := sumRings(m)
	if bytes != m.Bytes() || msgsHeld != m.Messages() || rooms != m.Rooms() {
		t.Fatalf("counters %d B %d msgs %d rooms, rings hold %d B %d msgs %d rooms",
			m.Bytes(), m.Messages(), m.Rooms(), bytes, msgsHeld, rooms)
	}
}

// When every room is in use nothing can be dropped: the oldest messages
// are trimmed instead, and seqs go on without a reset.
func TestMemoryBudgetTrimsRoomsInUse(t *testing.T) {
	const maxBytes = 32 << 10
	m := NewMemoryWith(MemoryConfig{Size: 100, MaxBytes: maxBytes, IfIdle: func(string, func()) bool { return false }})
	t.Cleanup(func() { _ = m.Close() })
	for i := 0; i < 20; i++ {
		appendN(t, m, fmt.Sprintf("r%d", i), 30)
	}
	if m.Bytes() > maxBytes+1024 {
		t.Fatalf("store holds %d bytes, cap %d", m.Bytes(), maxBytes)
	}
	if m.Dropped() != 0 || m.Rooms() != 20 {
		t.Fatalf("dropped %d rooms (%d left); rooms in use must stay", m.Dropped(), m.Rooms())
	}
	e := &enc{room: "r0"}
	msg, _, _, _ := m.Append("r0", "alice", "", e.encode)
	if msg.Seq != 31 {
		t.Fatalf("seq after trimming %d, want 31", msg.Seq)
	}
	p, _ := m.Range("r0", 0, math.MaxUint64, 100)
	if p.Complete || len(p.Messages) == 0 || p.Messages[len(p.Messages)-1].Seq != 31 {
		t.Fatalf("Range from 0 after trimming: %v complete %v; want the newest, incomplete", seqs(p.Messages), p.Complete)
	}
}

// Rooms idle past the TTL are dropped by the sweep, unless in use.
func TestMemoryTTL(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	m := NewMemoryWith(MemoryConfig{Size: 10, TTL: time.Minute, Now: clock.Now, IfIdle: idleUnless("busy")})
	t.Cleanup(func() { _ = m.Close() })
	appendN(t, m, "old", 2)
	appendN(t, m, "busy", 2)
	clock.Advance(50 * time.Second)
	appendN(t, m, "young", 2)
	clock.Advance(20 * time.Second)
	m.expire(clock.Now().Add(-time.Minute).UnixNano())
	for room, want := range map[string]uint64{"old": 0, "busy": 2, "young": 2} {
		if p, _ := m.Range(room, 0, math.MaxUint64, 0); p.Latest != want {
			t.Errorf("%s: latest %d after the sweep, want %d", room, p.Latest, want)
		}
	}
	if m.Rooms() != 2 || m.Dropped() != 1 {
		t.Fatalf("rooms %d dropped %d, want 2 and 1", m.Rooms(), m.Dropped())
	}
}

// The sweep goroutine runs on its own at TTL/4.
func TestMemoryTTLSweepRuns(t *testing.T) {
	m := NewMemoryWith(MemoryConfig{Size: 10, TTL: 100 * time.Millisecond, IfIdle: idleUnless()})
	t.Cleanup(func() { _ = m.Close() })
	appendN(t, m, "r", 1)
	deadline := time.Now().Add(2 * time.Second)
	for m.Rooms() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m.Rooms() != 0 || m.Bytes() != 0 || m.Messages() != 0 {
		t.Fatalf("after 2 s: %d rooms, %d bytes, %d messages; want all gone", m.Rooms(), m.Bytes(), m.Messages())
	}
}

// A ring trimmed, then refilled past its old length, keeps seq order.
func TestRingTrimThenGrow(t *testing.T) {
	var r ring
	for s := uint64(1); s <= 4; s++ {
		r.push(Message{Seq: s}, 8)
	}
	r.popOldest()
	r.popOldest()
	check := func(first uint64, n int) {
		t.Helper()
		if r.n != n {
			t.Fatalf("n = %d, want %d", r.n, n)
		}
		for i := 0; i < r.n; i++ {
			if got := r.at(i).Seq; got != first+uint64(i) {
				t.Fatalf("at(%d) = %d, want %d", i, got, first+uint64(i))
			}
		}
	}
	for s := uint64(5); s <= 7; s++ { // refills the trimmed slots, then grows
		r.push(Message{Seq: s}, 8)
	}
	check(3, 5)
	for s := uint64(8); s <= 14; s++ { // fills, then wraps
		r.push(Message{Seq: s}, 8)
	}
	check(7, 8)
}

// Appends, drops and trims from many goroutines keep the counters equal
// to what the rings hold (run with -race).
func TestMemoryBudgetConcurrent(t *testing.T) {
	m := NewMemoryWith(MemoryConfig{Size: 20, MaxBytes: 48 << 10, IfIdle: idleUnless("r0", "r1")})
	t.Cleanup(func() { _ = m.Close() })
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				appendN(t, m, fmt.Sprintf("r%d", (g*300+i)%50), 1)
			}
		}(g)
	}
	wg.Wait()
	bytes, msgs, rooms := sumRings(m)
	if bytes != m.Bytes() || msgs != m.Messages() || rooms != m.Rooms() {
		t.Fatalf("counters %d B %d msgs %d rooms, rings hold %d B %d msgs %d rooms",
			m.Bytes(), m.Messages(), m.Rooms(), bytes, msgs, rooms)
	}
	if m.Bytes() > 48<<10+4096 {
		t.Fatalf("store holds %d bytes over a %d cap", m.Bytes(), 48<<10)
	}
}
