package history

import (
	"context"
	"fmt"
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
	msgs, _, _, _, err := s.Range("r", 0, 100, 10)
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
