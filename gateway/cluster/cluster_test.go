package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/backend"
	"github.com/chatgw/gateway/gateway/hub"
	"github.com/chatgw/gateway/internal/redistest"
)

// recorder is a Sink that keeps what it was given, per room.
type recorder struct {
	mu   sync.Mutex
	seqs map[string][]uint64
	lost map[string]int
	got  chan struct{}
}

func newRecorder() *recorder {
	return &recorder{seqs: map[string][]uint64{}, lost: map[string]int{}, got: make(chan struct{}, 1<<16)}
}

func (r *recorder) Message(room string, seq uint64, frame []byte) {
	r.mu.Lock()
	r.seqs[room] = append(r.seqs[room], seq)
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default: // benchmarks deliver more than anyone waits for
	}
}
func (r *recorder) Event(string, hub.Kind, []byte) {}
func (r *recorder) Offline(string, string)         {}
func (r *recorder) Lost(room string, _ uint64, _ string) {
	r.mu.Lock()
	r.lost[room]++
	r.mu.Unlock()
}

func startNode(tb testing.TB, id string, sink Sink) (*Node, *redis.Client) {
	tb.Helper()
	srv := redistest.Start(tb)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	n := New(Config{Client: c, NodeID: id, Size: 100, PresenceRefresh: time.Hour,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, sink)
	tb.Cleanup(func() { _ = n.Close(); _ = c.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for !n.Ready() {
		if time.Now().After(deadline) {
			tb.Fatal("node never ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n, c
}

// acquire subscribes n to room and waits for it to be live.
func acquire(n *Node, room string) error {
	ch := make(chan error, 1)
	n.Subscribe(room, func(err error) { ch <- err })
	return <-ch
}

func encoder(room string, i int) func(uint64, int64) []byte {
	text := fmt.Sprint("m", i)
	return func(seq uint64, ts int64) []byte {
		f := codec.NewFrame()
		f.B = codec.AppendMessage(f.B, &codec.Message{Room: room, Seq: seq, TS: ts, From: "u", Text: &text})
		out := f.Owned()
		f.Release()
		return out
	}
}

func TestPublishDeliversInSeqOrder(t *testing.T) {
	rec := newRecorder()
	n, _ := startNode(t, "n1", rec)
	if err := acquire(n, "r"); err != nil {
		t.Fatal(err)
	}
	const senders, each = 4, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[uint64]bool{}
	for s := 0; s < senders; s++ {
		for i := 0; i < each; i++ {
			wg.Add(1)
			n.Publish("r", "u", "", encoder("r", i), func(a backend.Ack, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil || a.Dup || acked[a.Seq] {
					t.Errorf("ack %+v err %v", a, err)
				}
				acked[a.Seq] = true
			})
		}
	}
	wg.Wait()
	for i := 0; i < senders*each; i++ {
		select {
		case <-rec.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d messages delivered", i, senders*each)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, seq := range rec.seqs["r"] {
		if seq != uint64(i+1) {
			t.Fatalf("delivery %d has seq %d", i, seq)
		}
	}
}

// TestSubscriptionsFollowLocalMembers: one SUBSCRIBE while any local
// member holds the room, none once the last is gone.
func TestSubscriptionsFollowLocalMembers(t *testing.T) {
	n, c := startNode(t, "n1", newRecorder())
	numsub := func() int64 {
		m, err := c.PubSubNumSub(context.Background(), n.channelOf("r")).Result()
		if err != nil {
			t.Fatal(err)
		}
		return m[n.channelOf("r")]
	}
	ctx := context.Background()
	if err := acquire(n, "r"); err != nil {
		t.Fatal(err)
	}
	if err := acquire(n, "r"); err != nil {
		t.Fatal(err)
	}
	if got := numsub(); got != 1 {
		t.Fatalf("subscribers with two local members: %d", got)
	}
	n.Unsubscribe("r")
	// A barrier instead of a sleep: subscription changes are applied in
	// order, so once another room's release has taken effect, a wrong
	// unsubscribe of "r" queued before it would have too.
	if err := acquire(n, "barrier"); err != nil {
		t.Fatal(err)
	}
	n.Unsubscribe("barrier")
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		m, err := c.PubSubNumSub(ctx, n.channelOf("barrier")).Result()
		if err != nil {
			t.Fatal(err)
		}
		if m[n.channelOf("barrier")] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the barrier room was never unsubscribed")
		}
	}
	if got := numsub(); got != 1 {
		t.Fatalf("subscribers with one local member left: %d", got)
	}
	n.Unsubscribe("r")
	deadline := time.Now().Add(3 * time.Second)
	for numsub() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("still subscribed after the last local member left")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// And again: a room that comes back is live again.
	if err := acquire(n, "r"); err != nil || numsub() != 1 {
		t.Fatalf("acquire again: err %v, subscribers %d", err, numsub())
	}
}

// BenchmarkPublishRedis: messages stored and published through Redis by
// one node, pipelined, acked; msgs/s is the figure.
func BenchmarkPublishRedis(b *testing.B) {
	n, _ := startNode(b, "n1", newRecorder())
	if err := acquire(n, "r"); err != nil {
		b.Fatal(err)
	}
	enc := encoder("r", 0)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for len(n.jobs) == cap(n.jobs) {
			time.Sleep(50 * time.Microsecond) // queue full: wait for the publisher
		}
		wg.Add(1)
		n.Publish("r", "u", "", enc, func(backend.Ack, error) { wg.Done() })
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
