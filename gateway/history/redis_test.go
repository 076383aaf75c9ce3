package history

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/internal/redistest"
)

// TestRedis runs the Store conformance suite against a real redis-server,
// flushed before each case: a new life of every room.
func TestRedis(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	testStore(t, func(t *testing.T, size int) Store {
		if err := c.FlushDB(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		return NewRedis(c, RedisOptions{Size: size})
	})
}

// TestRedisTemplateSurvivesHostileText: text and data that contain what
// looks like the seq and ts fields, and the sentinels themselves, are stored
// as sent, with the real seq and ts in the real fields.
func TestRedisTemplateSurvivesHostileText(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	s := NewRedis(c, RedisOptions{Size: 10})
	text := fmt.Sprintf(`"seq":%d,"ts":%d | \" |`, seqSentinel, tsSentinel)
	data := []byte(fmt.Sprintf(`{"seq":%d,"ts":%d}`, seqSentinel, tsSentinel))
	e := func(seq uint64, ts int64) []byte {
		f := codec.NewFrame()
		f.B = codec.AppendMessage(f.B, &codec.Message{Room: "r", Seq: seq, TS: ts, From: "a", Text: &text, Data: data})
		out := f.Owned()
		f.Release()
		return out
	}
	m, _, _, err := s.Append("r", "a", "", e)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Range("r", 0, 100, 10)
	msgs := p.Messages
	if err != nil || len(msgs) != 1 {
		t.Fatalf("range: %v %v", msgs, err)
	}
	want := string(e(m.Seq, m.TS))
	if got := string(msgs[0].Frame); got != want {
		t.Fatalf("stored frame\n%q\nwant what the encoder makes\n%q", got, want)
	}
	// Four look-alikes: the seq sentinel in text and data, and inside the
	// ts sentinel of each.
	if strings.Count(string(msgs[0].Payload()), fmt.Sprint(seqSentinel)) != 4 {
		t.Fatalf("the client's text and data lost their look-alike fields: %s", msgs[0].Payload())
	}
}

// TestRedisQueueRange: QueueRange and ParseRange on a pipeline answer what
// Range answers; after a SCRIPT FLUSH the pipeline gets NOSCRIPT (IsNoScript)
// until LoadScripts.
func TestRedisQueueRange(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	s := NewRedis(c, RedisOptions{Size: 5})
	ctx := context.Background()
	appendN(t, s, "r", 8) // holds 4..8
	queries := []struct {
		room          string
		after, before uint64
		limit         int
	}{
		{"r", 0, math.MaxUint64, 10},
		{"r", 3, math.MaxUint64, 10},
		{"r", 3, math.MaxUint64, 2},
		{"r", 4, 7, 10},
		{"r", 0, 0, 0},
		{"r", math.MaxUint64, math.MaxUint64, 10},
		{"nobody", 0, math.MaxUint64, 10},
		{"nobody", 2, math.MaxUint64, 10},
	}
	pipeline := func() ([]*redis.Cmd, error) {
		pipe := c.Pipeline()
		cmds := make([]*redis.Cmd, len(queries))
		for i, q := range queries {
			cmds[i] = s.QueueRange(ctx, pipe, q.room, q.after, q.before, q.limit)
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	check := func(cmds []*redis.Cmd) {
		t.Helper()
		for i, q := range queries {
			got, err := ParseRange(cmds[i])
			if err != nil {
				t.Fatalf("ParseRange(%+v): %v", q, err)
			}
			want, err := s.Range(q.room, q.after, q.before, q.limit)
			if err != nil {
				t.Fatalf("Range(%+v): %v", q, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%+v: pipelined %+v, Range %+v", q, got, want)
			}
			if got.Epoch == "" {
				t.Errorf("%+v: no epoch", q)
			}
		}
	}
	if err := s.LoadScripts(ctx); err != nil {
		t.Fatal(err)
	}
	cmds, err := pipeline()
	if err != nil {
		t.Fatal(err)
	}
	check(cmds)
	if p, _ := ParseRange(cmds[0]); p.Latest != 8 || p.Complete || !equalSeqs(seqs(p.Messages), seqRange(4, 8)) {
		t.Fatalf("pipelined Range(0, max, 10) = %v latest %d complete %v; want 4..8, 8, incomplete",
			seqs(p.Messages), p.Latest, p.Complete)
	}

	// A Redis that lost its scripts: every pipelined range says NOSCRIPT,
	// not ErrUnavailable, until the scripts are loaded again.
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	cmds, err = pipeline()
	if !IsNoScript(err) {
		t.Fatalf("pipeline after SCRIPT FLUSH: %v, want NOSCRIPT", err)
	}
	for i, q := range queries {
		if _, err := ParseRange(cmds[i]); !IsNoScript(err) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("ParseRange(%+v) after SCRIPT FLUSH: %v, want NOSCRIPT", q, err)
		}
	}
	if err := s.LoadScripts(ctx); err != nil {
		t.Fatal(err)
	}
	cmds, err = pipeline()
	if err != nil {
		t.Fatalf("pipeline after LoadScripts: %v", err)
	}
	check(cmds)

	// Any other failure is ErrUnavailable.
	_ = c.Close()
	cmds, _ = pipeline()
	if _, err := ParseRange(cmds[0]); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ParseRange on a closed client: %v, want ErrUnavailable", err)
	}
	if _, err := s.Range("r", 0, math.MaxUint64, 10); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Range on a closed client: %v, want ErrUnavailable", err)
	}
}
