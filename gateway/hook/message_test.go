package hook

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// flaky is a message endpoint that answers 500 while down and keeps every
// call in order, with the node that made it (a caller's ?node=, for
// endpoints shared by several nodes).
type flaky struct {
	*receiver
	down     atomic.Bool
	mu       sync.Mutex
	attempts []attempt
}

type attempt struct {
	node string
	body []byte
	ok   bool
}

func newFlaky(t *testing.T) *flaky {
	f := &flaky{}
	f.receiver = newReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		f.mu.Lock()
		defer f.mu.Unlock()
		ok := !f.down.Load()
		f.attempts = append(f.attempts, attempt{r.URL.Query().Get("node"), body, ok})
		if !ok {
			w.WriteHeader(500)
		}
	})
	return f
}

// count counts the attempts of node (any node: "") that were answered ok
// (or not).
func (f *flaky) count(node string, ok bool) (n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.attempts {
		if (node == "" || a.node == node) && a.ok == ok {
			n++
		}
	}
	return n
}

// failed counts the attempts answered 500.
func (f *flaky) failed() int { return f.count("", false) }

// accepted returns the batches answered 200, in order.
func (f *flaky) accepted() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]byte
	for _, a := range f.attempts {
		if a.ok {
			out = append(out, a.body)
		}
	}
	return out
}

// delivered decodes the accepted batches' messages, in order.
func (f *flaky) delivered(t *testing.T) []Message {
	m, _ := f.deliveredBy(t)
	return m
}

// deliveredBy is delivered with how many messages each node sent.
func (f *flaky) deliveredBy(t *testing.T) ([]Message, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Message
	by := map[string]int{}
	for _, a := range f.attempts {
		if a.ok {
			ms := messages(t, a.body)
			out = append(out, ms...)
			by[a.node] += len(ms)
		}
	}
	return out, by
}

// checkOnceInOrder fails unless got holds every message of want rooms
// (room: count) exactly once, each room's in seq order.
func checkOnceInOrder(t *testing.T, got []Message, want map[string]int) {
	t.Helper()
	seen := map[string]bool{}
	next := map[string]uint64{}
	for _, m := range got {
		if seen[key(m)] {
			t.Errorf("%s delivered twice", key(m))
		}
		seen[key(m)] = true
		if m.Seq != next[m.Room]+1 {
			t.Errorf("%s delivered after seq %d", key(m), next[m.Room])
		}
		next[m.Room] = m.Seq
		if m.Text == nil || *m.Text != fmt.Sprintf("%s-%d", m.Room, m.Seq) || m.From != "u" || m.TS != int64(m.Seq) {
			t.Errorf("%s: event %+v", key(m), m)
		}
	}
	for room, n := range want {
		if next[room] != uint64(n) {
			t.Errorf("room %s: delivered up to %d, want %d", room, next[room], n)
		}
	}
	if len(got) != len(seen) || len(seen) != total(want) {
		t.Errorf("%d events delivered, %d distinct, want %d", len(got), len(seen), total(want))
	}
}

func total(want map[string]int) (n int) {
	for _, c := range want {
		n += c
	}
	return n
}

// store adds n messages to room, then reports each with Stored: the
// first read after the first Stored finds all n, however the sender is
// scheduled, so they make one batch (if BatchMax allows).
func store(h *Hooks, src *memSource, room string, n int) {
	seqs := make([]uint64, n)
	for i := range seqs {
		src.mu.Lock()
		seq := len(src.msgs[room]) + 1
		src.mu.Unlock()
		seqs[i] = src.add(room, fmt.Sprintf("%s-%d", room, seq))
	}
	for _, seq := range seqs {
		h.Stored(room, seq)
	}
}

var fastRetry = Config{BatchWait: 5 * time.Millisecond, RetryMin: 5 * time.Millisecond, RetryMax: 40 * time.Millisecond}

func msgConfig(url string, batchMax int) Config {
	c := fastRetry
	c.URL, c.Events, c.BatchMax = url, EventsOf(EventMessage), batchMax
	return c
}

// TestMessagesOnceInOrderThroughFailures: rooms written concurrently while
// the endpoint fails, then recovers: every message is delivered once, in
// seq order per room, failed batches are retried unchanged, cursors end at
// the latest seq and the lag gauge at zero.
func TestMessagesOnceInOrderThroughFailures(t *testing.T) {
	f := newFlaky(t)
	f.down.Store(true)
	src := newMemSource()
	reg := prometheus.NewRegistry()
	h := start(t, msgConfig(f.srv.URL, 7), src, reg)

	want := map[string]int{"a": 60, "b": 45, "@bob": 30}
	var wg sync.WaitGroup
	for room, n := range want {
		wg.Go(func() {
			for i := range n {
				store(h, src, room, 1)
				if i%10 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	eventually(t, 5*time.Second, "failed attempts", func() bool { return f.failed() >= 3 })
	if lag := metric(t, reg, "gateway_hook_cursor_lag"); lag != float64(total(want)) {
		t.Errorf("cursor lag %v while down, want %d", lag, total(want))
	}
	f.down.Store(false)
	eventually(t, 10*time.Second, "every message", func() bool { return len(f.delivered(t)) >= total(want) })

	checkOnceInOrder(t, f.delivered(t), want)
	f.mu.Lock()
	failedThenRetried := 0
	for i, a := range f.attempts {
		if n := len(decodeBatch(t, a.body).Events); n > 7 {
			t.Errorf("batch of %d events, BatchMax 7", n)
		}
		if !a.ok { // a failed attempt: the next one is the same batch
			failedThenRetried++
			if i+1 == len(f.attempts) || !bytes.Equal(a.body, f.attempts[i+1].body) {
				t.Errorf("attempt %d failed, attempt %d differs", i, i+1)
			}
		}
	}
	f.mu.Unlock()
	if failedThenRetried < 3 {
		t.Errorf("%d failed attempts", failedThenRetried)
	}
	// A cursor is saved once the 2xx is read, a moment after the
	// endpoint recorded the batch.
	for room, n := range want {
		eventually(t, time.Second, "cursor of "+room+" at its latest seq", func() bool { return src.cursor(room) == uint64(n) })
	}
	if metric(t, reg, "gateway_hook_failures_total", "event", "message") < 3 ||
		metric(t, reg, "gateway_hook_calls_total", "event", "message", "outcome", "ok") < 1 {
		t.Error("calls not counted")
	}
	eventually(t, time.Second, "no lag", func() bool {
		return metric(t, reg, "gateway_hook_cursor_lag") == 0 && metric(t, reg, "gateway_hook_queue") == 0
	})
}

// TestRestartResume: messages stored while the endpoint is down are not
// lost when the node stops: new hooks over the same Source (the cursor
// persisted, no Stored calls repeated) deliver them, and nothing that was
// delivered before is delivered again.
func TestRestartResume(t *testing.T) {
	f := newFlaky(t)
	src := newMemSource()
	h1, err := New(msgConfig(f.srv.URL, 8), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	store(h1, src, "a", 20)
	eventually(t, 5*time.Second, "the first messages", func() bool { return len(f.delivered(t)) == 20 })
	f.down.Store(true)
	store(h1, src, "a", 15)
	store(h1, src, "b", 10)
	eventually(t, 5*time.Second, "failed attempts", func() bool { return f.failed() >= 2 })
	h1.Close()
	if src.cursor("a") != 20 || src.cursor("b") != 0 {
		t.Fatalf("cursors a %d b %d after the first run", src.cursor("a"), src.cursor("b"))
	}

	// The restart: Pending fails at first (the store is not up yet).
	f.down.Store(false)
	src.failPending = 2
	start(t, msgConfig(f.srv.URL, 8), src, nil)
	eventually(t, 5*time.Second, "the resumed messages", func() bool { return len(f.delivered(t)) >= 45 })
	checkOnceInOrder(t, f.delivered(t), map[string]int{"a": 35, "b": 10})
	if src.cursor("a") != 35 || src.cursor("b") != 10 {
		t.Errorf("cursors a %d b %d", src.cursor("a"), src.cursor("b"))
	}
}

// TestUnseenAnswerRepeatsBatch states what at-least-once repeats: a batch
// the application took but whose 2xx the gateway did not see (here: the
// answer came after Timeout) is sent again, whole; and after a restart,
// the batches whose cursor could not be saved. Nothing else is repeated.
func TestUnseenAnswerRepeatsBatch(t *testing.T) {
	var mu sync.Mutex
	var taken [][]byte
	var slow atomic.Bool
	slow.Store(true)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		mu.Lock()
		taken = append(taken, body) // the application processes it...
		mu.Unlock()
		if slow.CompareAndSwap(true, false) {
			<-r.Context().Done() // ...but answers too late
		}
	})
	got := func() []Message {
		mu.Lock()
		defer mu.Unlock()
		var out []Message
		for _, b := range taken {
			out = append(out, messages(t, b)...)
		}
		return out
	}
	src := newMemSource()
	cfg := msgConfig(rc.srv.URL, 100)
	// The slow answer waits out the whole timeout; the others must not
	// (a loaded CI machine once took over 100 ms to answer each one).
	cfg.Timeout = time.Second
	cfg.BatchWait = 30 * time.Millisecond
	h := start(t, cfg, src, nil)
	store(h, src, "r", 5)
	eventually(t, 5*time.Second, "the batch, twice", func() bool { return len(got()) >= 10 && src.cursor("r") == 5 })
	store(h, src, "r", 3)
	eventually(t, 5*time.Second, "the next batch", func() bool { return src.cursor("r") == 8 })

	// A crash after the 2xx but before the cursor is saved: here SetCursor
	// fails and the hooks stop; the next start repeats that batch only.
	src.set(func() { src.failSet = true })
	store(h, src, "r", 2)
	eventually(t, 5*time.Second, "the third batch", func() bool { return len(got()) == 15 })
	h.Close()
	src.set(func() { src.failSet = false })
	start(t, cfg, src, nil)
	eventually(t, 5*time.Second, "the repeat after restart", func() bool { return src.cursor("r") == 10 })

	count := map[uint64]int{}
	for _, m := range got() {
		count[m.Seq]++
	}
	for seq := uint64(1); seq <= 10; seq++ {
		want := 1
		if seq <= 5 || seq >= 9 {
			want = 2
		}
		if count[seq] != want {
			t.Errorf("seq %d delivered %d times, want %d (counts %v)", seq, count[seq], want, count)
		}
	}
}

// TestMessageBatchMax: a backlog goes out in batches of BatchMax, the rest
// in a last smaller one, and rooms share a batch.
func TestMessageBatchMax(t *testing.T) {
	f := newFlaky(t)
	src := newMemSource()
	for i := range 35 {
		src.add("a", fmt.Sprintf("a-%d", i+1))
	}
	src.add("b", "b-1")
	cfg := msgConfig(f.srv.URL, 10)
	cfg.BatchWait = time.Second // the batches fill: none may wait for it
	h := start(t, cfg, src, nil)
	began := time.Now()
	for seq := uint64(1); seq <= 35; seq++ {
		h.Stored("a", seq)
	}
	h.Stored("b", 1)
	eventually(t, 5*time.Second, "every message", func() bool { return len(f.delivered(t)) == 36 })
	if d := time.Since(began); d > 900*time.Millisecond {
		t.Errorf("full batches waited: %v", d)
	}
	var sizes []int
	for _, b := range f.accepted() {
		sizes = append(sizes, len(decodeBatch(t, b).Events))
	}
	if fmt.Sprint(sizes) != "[10 10 10 6]" {
		t.Errorf("batch sizes %v, want [10 10 10 6]", sizes)
	}
	checkOnceInOrder(t, f.delivered(t), map[string]int{"a": 35, "b": 1})
}

// TestMessagesLost: messages history dropped before they were notified are
// skipped and counted; the rest are delivered.
func TestMessagesLost(t *testing.T) {
	f := newFlaky(t)
	src := newMemSource()
	for i := range 10 {
		src.add("r", fmt.Sprintf("r-%d", i+1))
	}
	src.drop("r", 4)
	reg := prometheus.NewRegistry()
	start(t, msgConfig(f.srv.URL, 100), src, reg) // resumes r through Pending
	eventually(t, 5*time.Second, "delivery", func() bool { return src.cursor("r") == 10 })
	got := f.delivered(t)
	if len(got) != 6 || got[0].Seq != 5 {
		t.Errorf("delivered %d from seq %d, want 6 from 5", len(got), got[0].Seq)
	}
	if d := metric(t, reg, "gateway_hook_dropped_total", "event", "message"); d != 4 {
		t.Errorf("dropped %v, want 4", d)
	}
}

// TestRescan: with Rescan set, rooms nobody reported with Stored (written
// by another node, say) are found through Pending and delivered.
func TestRescan(t *testing.T) {
	f := newFlaky(t)
	src := newMemSource()
	cfg := msgConfig(f.srv.URL, 100)
	cfg.Rescan = 20 * time.Millisecond
	start(t, cfg, src, nil)
	eventually(t, 5*time.Second, "resume", func() bool { src.mu.Lock(); defer src.mu.Unlock(); return src.pendingCalls > 0 })
	for i := range 4 {
		src.add("elsewhere", fmt.Sprintf("elsewhere-%d", i+1))
	}
	eventually(t, 5*time.Second, "delivery", func() bool { return src.cursor("elsewhere") == 4 })
	checkOnceInOrder(t, f.delivered(t), map[string]int{"elsewhere": 4})
}
