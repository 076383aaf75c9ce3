package hook

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// leaderSource is one node's view of a Source shared by several nodes: the
// same messages and cursors, and a lease this test hands around.
type leaderSource struct {
	*memSource
	lead atomic.Bool
}

func (s *leaderSource) Leader() bool { return s.lead.Load() }

// TestFollowerSendsNothingThenLeads: a node whose Source is not the leader
// sends nothing, does not list rooms (Pending may cost the shared store a
// scan) and counts no lag, though Stored is called; once it leads, it reads
// Pending and sends every message, once, in order. Rescan is off: only the
// takeover's Pending can find the rooms.
func TestFollowerSendsNothingThenLeads(t *testing.T) {
	nc := newFlaky(t)
	src := &leaderSource{memSource: newMemSource()}
	reg := prometheus.NewRegistry()
	h := start(t, msgConfig(nc.srv.URL+"?node=a", 10), src, reg)
	time.Sleep(100 * time.Millisecond) // standing by: the Stored calls below are ignored, not cleared
	store(h, src.memSource, "a", 12)
	store(h, src.memSource, "b", 5)
	time.Sleep(300 * time.Millisecond) // what a leader would have sent by now
	if n := len(nc.requests()); n != 0 {
		t.Fatalf("a node that is not the leader made %d calls", n)
	}
	src.mu.Lock()
	calls := src.pendingCalls
	src.mu.Unlock()
	if calls != 0 {
		t.Errorf("a node that is not the leader read Pending %d times", calls)
	}
	if lag := metric(t, reg, "gateway_hook_cursor_lag"); lag != 0 {
		t.Errorf("cursor lag %v on a node that is not the leader", lag)
	}

	src.lead.Store(true)
	eventually(t, 5*time.Second, "every message", func() bool { m, _ := nc.deliveredBy(t); return len(m) >= 17 })
	// The cursors are saved once the 2xx is read, after the endpoint saw
	// the batch.
	eventually(t, 5*time.Second, "the cursors", func() bool { return src.cursor("a") == 12 && src.cursor("b") == 5 })
	got, _ := nc.deliveredBy(t)
	checkOnceInOrder(t, got, map[string]int{"a": 12, "b": 5})
}

// TestLeaseHandover: two nodes over one shared Source. The leader sends
// everything, though both get Stored; while the endpoint fails, the lease
// passes to the other node, and the old leader abandons the batch it was
// retrying instead of sending it beside the new leader. When the endpoint
// is back, every message is delivered exactly once; and when the lease
// comes back, the first node resumes from the cursors the second saved.
func TestLeaseHandover(t *testing.T) {
	nc := newFlaky(t)
	shared := newMemSource()
	a := &leaderSource{memSource: shared}
	b := &leaderSource{memSource: shared}
	a.lead.Store(true)
	ha := start(t, msgConfig(nc.srv.URL+"?node=a", 10), a, nil)
	hb := start(t, msgConfig(nc.srv.URL+"?node=b", 10), b, nil)
	both := func(room string, n int) { // both nodes are told, as if each had stored half
		store(ha, shared, room, n)
		shared.mu.Lock()
		latest := uint64(len(shared.msgs[room]))
		shared.mu.Unlock()
		for seq := latest - uint64(n) + 1; seq <= latest; seq++ {
			hb.Stored(room, seq)
		}
	}
	both("r", 10)
	eventually(t, 5*time.Second, "the first messages", func() bool { return shared.cursor("r") == 10 })

	nc.down.Store(true)
	both("r", 5)
	both("s", 3)
	eventually(t, 5*time.Second, "the leader failing", func() bool { return nc.count("a", false) >= 2 })
	a.lead.Store(false)
	b.lead.Store(true)
	eventually(t, 5*time.Second, "the new leader failing", func() bool { return nc.count("b", false) >= 2 })
	// The old leader asks before each attempt, at most RetryMax apart.
	aTries := nc.count("a", false)
	time.Sleep(4 * fastRetry.RetryMax)
	if n := nc.count("a", false); n > aTries+1 {
		t.Errorf("the old leader made %d more attempts after the lease passed", n-aTries)
	}
	nc.down.Store(false)
	eventually(t, 5*time.Second, "the rest", func() bool { return shared.cursor("r") == 15 && shared.cursor("s") == 3 })

	// And back: the first node must read the cursors again, not resume
	// from what it knew when it stood down.
	b.lead.Store(false)
	a.lead.Store(true)
	both("r", 4)
	eventually(t, 5*time.Second, "the last messages", func() bool { return shared.cursor("r") == 19 })
	time.Sleep(100 * time.Millisecond) // any duplicate would be on its way
	got, by := nc.deliveredBy(t)
	checkOnceInOrder(t, got, map[string]int{"r": 19, "s": 3})
	if by["a"] != 14 || by["b"] != 8 {
		t.Errorf("delivered by node %v, want a 14 (10, then 4 after the lease came back), b 8", by)
	}
}
