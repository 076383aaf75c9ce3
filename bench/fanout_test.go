// Fan-out benchmarks. Run them with:
//
//	go test -run=NONE -bench=Fanout -benchmem ./bench
//
// One room with 1,000 or 10,000 members, each behind a discard sink (the
// hub's Sink is the socket; here it only counts). Every iteration stores
// one real codec message frame (~100 bytes) through hub.Publish and waits
// until every member has been written it. What the figures show:
//
//   - allocs/op is a small constant (the message frame, its encoding
//     buffer) and does not grow with the member count: nothing is
//     allocated per recipient;
//   - ns/op grows linearly with members (one write per member), so
//     ns/op divided by members is the per-recipient cost;
//   - BenchmarkFanoutBurst10k publishes 10 messages back to back: the
//     writes/delivery metric falls below 1 as the fan-out worker coalesces
//     a member's queued frames into one write.
package bench

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/hub"
	"github.com/chatgw/gateway/gateway/metrics"
)

// discard is a Sink that keeps nothing. Each Write counts the frames it
// carries (walking their headers, without allocating) and marks them done
// on the benchmark's WaitGroup.
type discard struct {
	done   *sync.WaitGroup
	frames atomic.Int64
	writes atomic.Int64
}

func (d *discard) Write(b []byte) (int, error) {
	n := frames(b)
	if n > 0 {
		d.writes.Add(1)
		d.frames.Add(int64(n))
		d.done.Add(-n)
	}
	return len(b), nil
}

func (d *discard) Close() error { return nil }

// frames counts the complete server frames in b.
func frames(b []byte) int {
	n := 0
	for len(b) >= 2 {
		hl, l := 2, int(b[1]&0x7F)
		switch l {
		case 126:
			hl, l = 4, int(b[2])<<8|int(b[3])
		case 127:
			hl, l = 10, 0
			for _, x := range b[2:10] {
				l = l<<8 | int(x)
			}
		}
		b = b[hl+l:]
		n++
	}
	return n
}

const room = "bench-room"

var text = "good morning, all"

// fanout is a hub with one room of n discard members and a publisher that
// encodes each message the way the gateway does.
type fanout struct {
	h     *hub.Hub
	done  sync.WaitGroup
	sinks []*discard
	seq   uint64
	store func() ([]byte, uint64, bool)
}

func newFanout(b testing.TB, members int, obs hub.Observer) *fanout {
	f := &fanout{h: hub.New(hub.Config{Workers: 1, Observer: obs})}
	b.Cleanup(f.h.Stop)
	joined := func() ([]byte, uint64, error) { return nil, 0, nil } // no frame: nothing to count
	for i := 0; i < members; i++ {
		s := &discard{done: &f.done}
		f.sinks = append(f.sinks, s)
		c := f.h.NewClient("user"+itoa(i), s, 0)
		if _, err := f.h.Join(c, room, joined); err != nil {
			b.Fatal(err)
		}
	}
	f.store = f.next
	// One message outside the timing: warms the pools and the worker's
	// reusable buffers, and checks the frame size.
	f.round(b, 1)
	for f.h.Stats().Deliveries != int64(members) { // the worker counts after writing
		runtime.Gosched()
	}
	if l := len(f.frameSample()); l < 90 || l > 130 {
		b.Fatalf("message frame is %d bytes, want about 100", l)
	}
	return f
}

// next stores the room's next message: its frame, encoded once as the
// gateway does, and its seq.
func (f *fanout) next() ([]byte, uint64, bool) {
	f.seq++
	fr := codec.NewFrame()
	fr.B = codec.AppendMessage(fr.B, &codec.Message{Room: room, Seq: f.seq, TS: 1763779200123, From: "alice", Text: &text})
	out := fr.Owned()
	fr.Release()
	return out, f.seq, true
}

func (f *fanout) frameSample() []byte {
	fr := codec.NewFrame()
	defer fr.Release()
	fr.B = codec.AppendMessage(fr.B, &codec.Message{Room: room, Seq: f.seq, TS: 1763779200123, From: "alice", Text: &text})
	return append([]byte(nil), fr.Bytes()...)
}

// round publishes k messages back to back and waits until every member has
// been written all of them.
func (f *fanout) round(b testing.TB, k int) {
	f.done.Add(k * len(f.sinks))
	for j := 0; j < k; j++ {
		f.h.Publish(room, f.store)
	}
	f.done.Wait()
}

// check verifies that every member got every message exactly once.
func (f *fanout) check(b testing.TB) {
	for i, s := range f.sinks {
		if got := s.frames.Load(); got != int64(f.seq) {
			b.Fatalf("member %d received %d frames, want %d", i, got, f.seq)
		}
	}
}

func benchFanout(b *testing.B, members, burst int, obs hub.Observer) {
	f := newFanout(b, members, obs)
	st0 := f.h.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.round(b, burst)
	}
	b.StopTimer()
	f.h.Stop() // drained: the worker's counters are final
	f.check(b)
	st := f.h.Stats()
	deliveries, writes := st.Deliveries-st0.Deliveries, st.Writes-st0.Writes
	if want := int64(b.N * burst * members); deliveries != want {
		b.Fatalf("%d deliveries, want %d", deliveries, want)
	}
	b.ReportMetric(float64(writes)/float64(deliveries), "writes/delivery")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(deliveries), "ns/delivery")
}

func BenchmarkFanout1k(b *testing.B)       { benchFanout(b, 1_000, 1, nil) }
func BenchmarkFanout10k(b *testing.B)      { benchFanout(b, 10_000, 1, nil) }
func BenchmarkFanoutBurst10k(b *testing.B) { benchFanout(b, 10_000, 10, nil) }

// The same with the node's Prometheus metrics on (the fan-out histograms
// fed through hub.Observer, as the gateway runs): allocs/op and ns/op must
// stay within noise of the runs above.
func BenchmarkFanout1kMetrics(b *testing.B)  { benchFanout(b, 1_000, 1, metrics.New().Observer()) }
func BenchmarkFanout10kMetrics(b *testing.B) { benchFanout(b, 10_000, 1, metrics.New().Observer()) }
func BenchmarkFanoutBurst10kMetrics(b *testing.B) {
	benchFanout(b, 10_000, 10, metrics.New().Observer())
}

func itoa(i int) string {
	var buf [20]byte
	p := len(buf)
	for {
		p--
		buf[p] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(buf[p:])
		}
	}
}

// TestFanoutAllocs backs the README's "nothing is allocated per
// recipient": one message fanned out to 10,000 members allocates no more
// than to 1,000 (the frame, made once per message), and only a few times.
func TestFanoutAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under -race (scripts/test.sh runs this without it)")
	}
	per := func(members int) float64 {
		f := newFanout(t, members, nil)
		return testing.AllocsPerRun(50, func() { f.round(t, 1) })
	}
	small, large := per(1_000), per(10_000)
	if large > small || large > 4 {
		t.Fatalf("allocations per fan-out: %.1f to 1,000 members, %.1f to 10,000; want the same, at most 4", small, large)
	}
}
