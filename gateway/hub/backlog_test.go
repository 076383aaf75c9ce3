package hub_test

import (
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatgw/gateway/gateway/hub"
)

// kernelSink is a socket whose kernel takes every byte (the client is told
// at once, as nbio's written callback does) but whose peer has stopped
// reading from some point: what was written since then is still in the
// kernel, unsent, and Unsent reports it as SIOCOUTQNSD would.
type kernelSink struct {
	recorder
	c       *hub.Client
	reading atomic.Bool  // the peer drains everything
	unsent  atomic.Int64 // bytes taken since the peer stopped reading
}

func (k *kernelSink) Write(b []byte) (int, error) {
	n, err := k.recorder.Write(b)
	if !k.reading.Load() {
		k.unsent.Add(int64(n))
	}
	if k.c != nil {
		k.c.Written(n)
	}
	return n, err
}

func (k *kernelSink) Unsent() int64 { return k.unsent.Load() }

// A client whose socket takes every byte but cannot send them on counts
// those bytes towards its cap: with no grace it is closed with 4001 at the
// second look at the kernel past the cap (within two eighths of the cap
// plus one frame), not left to fill its kernel buffer, megabytes, first.
func TestSlowConsumerKernelBacklog(t *testing.T) {
	frame := messageFrame("r", 1)
	l := int64(len(frame))
	const capFrames = 64
	h := newHub(t, hub.Config{MaxOutboundBytes: capFrames * l, BacklogGrace: time.Nanosecond})
	s := &kernelSink{}
	c := h.NewClient("alice", s, now())
	s.c = c

	sent := 0
	for ; sent < 10*capFrames && !c.Closing(); sent++ {
		c.Send(frame)
		time.Sleep(time.Microsecond) // the hub's clock must move between looks
	}
	if !c.Closing() || c.CloseCode() != hub.CloseSlowConsumer {
		t.Fatalf("after %d frames (%d bytes unsent in the kernel, cap %d) closing=%v code=%d; want closed 4001",
			sent, s.Unsent(), capFrames*l, c.Closing(), c.CloseCode())
	}
	if c.Pending() != 0 {
		t.Fatalf("Pending = %d: the socket took everything, the backlog is the kernel's", c.Pending())
	}
	// Closed within two eighths of the cap (one look at the kernel per
	// eighth, the second one over it closes) plus the frame that crossed.
	if most := capFrames + 2*capFrames/8 + 1; sent > most || sent <= capFrames {
		t.Fatalf("closed after %d frames, want just over %d and at most %d", sent, capFrames, most)
	}
	frames := s.Frames(t)
	checkClose(t, frames[len(frames)-1], hub.CloseSlowConsumer)
	if len(frames) != sent+1 {
		t.Fatalf("got %d frames, want the %d messages sent and the close frame", len(frames), sent)
	}
	if n := h.Stats().SlowConsumers; n != 1 {
		t.Fatalf("SlowConsumers = %d, want 1", n)
	}
}

// A peer that reads leaves nothing unsent: however much is written, it is
// never closed.
func TestKernelBacklogOfReaderNotCounted(t *testing.T) {
	frame := messageFrame("r", 1)
	l := int64(len(frame))
	h := newHub(t, hub.Config{MaxOutboundBytes: 8 * l})
	s := &kernelSink{}
	s.reading.Store(true)
	c := h.NewClient("alice", s, now())
	s.c = c
	for i := 0; i < 1000; i++ {
		c.Send(frame)
	}
	if c.Closing() {
		t.Fatalf("a client that reads everything was closed (code %d)", c.CloseCode())
	}
}

// Fan-out counts a member's kernel backlog too: the member whose peer
// stopped reading is closed with 4001 after a gapless prefix, the one that
// reads gets every message.
func TestSlowConsumerKernelBacklogFanout(t *testing.T) {
	l := int64(len(messageFrame("r", 1)))
	h := newHub(t, hub.Config{MaxOutboundBytes: 16 * l, Workers: 1, BacklogGrace: time.Nanosecond})
	rs := &roomSeq{room: "r"}
	slow, fine := &kernelSink{}, &kernelSink{}
	fine.reading.Store(true)
	sc := h.NewClient("slow", slow, now())
	fc := h.NewClient("fine", fine, now())
	slow.c, fine.c = sc, fc
	for _, c := range []*hub.Client{sc, fc} {
		if _, err := h.Join(c, "r", func() ([]byte, uint64, error) { return nil, 0, nil }); err != nil {
			t.Fatal(err)
		}
	}
	const total = 100
	for i := 1; i <= total; i++ {
		rs.publish(h)
		// One message per pass: otherwise the worker may coalesce them
		// all into one write, which the cap only bounds after the fact.
		// Counted in frames, not writes: a loaded CI machine once saw
		// Writes stay short of i for 5 s (the fine member's frames are
		// checked one by one at the end).
		waitFor(t, "message "+itoa(uint64(i)), func() bool { return len(fine.Frames(t)) >= i })
	}
	h.Stop()

	if sc.CloseCode() != hub.CloseSlowConsumer || fc.Closing() {
		t.Fatalf("close codes: slow %d, fine %d; want 4001 and none", sc.CloseCode(), fc.CloseCode())
	}
	frames := slow.Frames(t)
	checkClose(t, frames[len(frames)-1], hub.CloseSlowConsumer)
	msgs := describe(t, frames[:len(frames)-1])
	if len(msgs) < 16 || len(msgs) >= total || !equalStrings(msgs, seqRun(1, uint64(len(msgs)))) {
		t.Fatalf("slow member got %d messages before its close frame (%s); want a gapless prefix of just over 16",
			len(msgs), diff(msgs, seqRun(1, uint64(len(msgs)))))
	}
	if got := describe(t, fine.Frames(t)); !equalStrings(got, seqRun(1, total)) {
		t.Fatalf("the member that reads: %s", diff(got, seqRun(1, total)))
	}
}

// burstSink is a socket that takes every byte and whose kernel backlog the
// test sets.
type burstSink struct {
	recorder
	c      *hub.Client
	unsent atomic.Int64
}

func (b *burstSink) Write(p []byte) (int, error) {
	n, err := b.recorder.Write(p)
	b.c.Written(n)
	return n, err
}

func (b *burstSink) Unsent() int64 { return b.unsent.Load() }

// A kernel backlog over the cap is a slow consumer only if it is still
// over it BacklogGrace later: a reader draining a burst within the grace
// stays; one that does not is closed at the first look after the grace.
func TestKernelBacklogGrace(t *testing.T) {
	frame := messageFrame("r", 1)
	l := int64(len(frame))
	const grace = 300 * time.Millisecond // long enough that a loaded machine does not pass it by itself
	h := newHub(t, hub.Config{MaxOutboundBytes: 8 * l, BacklogGrace: grace})
	s := &burstSink{}
	c := h.NewClient("alice", s, now())
	s.c = c
	s.unsent.Store(100 * l) // a burst sits in the kernel
	for i := 0; i < 50; i++ {
		c.Send(frame) // many looks at the kernel, all within the grace
	}
	if c.Closing() {
		t.Fatal("closed within the grace")
	}
	time.Sleep(grace)
	s.unsent.Store(0) // drained
	for i := 0; i < 50; i++ {
		c.Send(frame)
	}
	if c.Closing() {
		t.Fatal("closed although the burst drained within the grace")
	}

	s.unsent.Store(100 * l) // stops reading
	start := time.Now()
	for !c.Closing() && time.Since(start) < 5*time.Second {
		c.Send(frame)
		time.Sleep(time.Millisecond)
	}
	if c.CloseCode() != hub.CloseSlowConsumer {
		t.Fatalf("a kernel backlog over the cap for %v: close code %d, want 4001", time.Since(start), c.CloseCode())
	}
	if took := time.Since(start); took < grace {
		t.Fatalf("closed %v after the backlog passed the cap, within the %v grace", took, grace)
	}
}

// lingerSink records SetLinger (nbio's signature) and Close, in order.
type lingerSink struct {
	recorder
	mu    sync.Mutex
	calls []string
}

func (l *lingerSink) SetLinger(onoff, linger int32) error {
	l.mu.Lock()
	l.calls = append(l.calls, "linger:"+itoa(uint64(onoff))+","+itoa(uint64(linger)))
	l.mu.Unlock()
	return nil
}

// SyscallConn stands for the socket's descriptor: Control records a
// shutdown, as abort's is the only use, without a syscall on a fake fd.
func (l *lingerSink) SyscallConn() (syscall.RawConn, error) { return lingerRaw{l}, nil }

type lingerRaw struct{ l *lingerSink }

func (r lingerRaw) Control(func(fd uintptr)) error {
	r.l.mu.Lock()
	r.l.calls = append(r.l.calls, "shutdown")
	r.l.mu.Unlock()
	return nil
}
func (lingerRaw) Read(func(fd uintptr) bool) error  { return nil }
func (lingerRaw) Write(func(fd uintptr) bool) error { return nil }

func (l *lingerSink) Close() error {
	l.mu.Lock()
	l.calls = append(l.calls, "close")
	l.mu.Unlock()
	return l.recorder.Close()
}

func (l *lingerSink) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

// guardedLingerSink is a lingerSink with nbio's lock and closed flag.
type guardedLingerSink struct {
	lingerSink
	lock   sync.Mutex
	closed atomic.Bool
}

func (g *guardedLingerSink) Lock() {
	g.lock.Lock()
	g.lingerSink.mu.Lock()
	g.calls = append(g.calls, "lock")
	g.lingerSink.mu.Unlock()
}
func (g *guardedLingerSink) Unlock()                 { g.lock.Unlock() }
func (g *guardedLingerSink) IsClosed() (bool, error) { return g.closed.Load(), nil }

// An nbio socket already closed (its descriptor possibly reused by a newer
// connection) is not touched; an open one is given SO_LINGER 0 and shut
// down under its lock, never closed from the hub's goroutine: the poller
// closes it (docs/nbio.md).
func TestAbortGuardsClosedSocket(t *testing.T) {
	const grace = int64(time.Millisecond)
	for _, closed := range []bool{false, true} {
		h := newHub(t, hub.Config{CloseGrace: grace})
		s := &guardedLingerSink{}
		s.closed.Store(closed)
		c := h.NewClient("alice", s, now())
		c.Close(hub.CloseSlowConsumer, "slow consumer")
		h.Tick(0, now()+2*grace, int64(time.Hour))
		want := []string{"lock", "linger:1,0", "shutdown"}
		if closed {
			want = []string{"lock"}
		}
		if got := s.Calls(); !equalStrings(got, want) {
			t.Errorf("socket closed=%v: %v, want %v", closed, got, want)
		}
	}
}

// A closing client still there when its grace ends is reset (SO_LINGER 0,
// then a shutdown that makes nbio's poller close it), so the kernel frees
// what its peer never read at once.
func TestCloseGraceExpiryResets(t *testing.T) {
	const grace = int64(time.Millisecond)
	h := newHub(t, hub.Config{CloseGrace: grace})
	s := &lingerSink{}
	c := h.NewClient("alice", s, now())
	c.Close(hub.CloseSlowConsumer, "slow consumer")
	if got := s.Calls(); len(got) != 0 {
		t.Fatalf("socket touched before the grace passed: %v", got)
	}
	h.Tick(0, now()+2*grace, int64(time.Hour))
	if got := s.Calls(); !equalStrings(got, []string{"linger:1,0", "shutdown"}) {
		t.Fatalf("at the end of the grace: %v, want [linger:1,0 shutdown]", got)
	}
}
