package history

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/codec"
)

var _ Store = (*Redis)(nil)

// Redis is the cluster Store. A room's keys share the hash tag {room}: its
// seq counter, its history (a list of "seq|ts|payload", trimmed to Size) and
// its epoch, a random id made when the room's keys are first written, so a
// Redis that lost its data hands out a new epoch and resuming clients are
// told nothing was recovered. Publishing is one Lua script: check the
// idempotency key, take the next seq, append, trim, remember the key, and
// PUBLISH to the other nodes, all or nothing.
type Redis struct {
	c    redis.UniversalClient
	opt  RedisOptions
	keys bool // idempotency keys live under the user's hash tag (see RedisOptions.Cluster)
}

// RedisOptions configure a Redis store.
type RedisOptions struct {
	Size    int           // messages kept per room
	TTL     time.Duration // a room's keys expire this long after its last message (0: never)
	Timeout time.Duration // per call (default 2s)
	// Cluster: the client is a Redis Cluster client. A script may then only
	// touch keys of one hash slot, so idempotency keys are kept per room,
	// not per user: a key reused in another room within KeyTTL is not
	// recognised there (clients retry in the room they sent to).
	Cluster bool
	// Channel, when set, names the pub/sub channel a room's messages are
	// published on, each as Origin|seq|payload.
	Channel func(room string) string
	Origin  string
	// Layout names the room's keys; a sharded layout also publishes with
	// SPUBLISH (Redis 7 sharded pub/sub: only the room's shard carries it).
	Layout Layout
}

// NewRedis returns a Store on c.
func NewRedis(c redis.UniversalClient, opt RedisOptions) *Redis {
	if opt.Timeout <= 0 {
		opt.Timeout = 2 * time.Second
	}
	return &Redis{c: c, opt: opt, keys: !opt.Cluster}
}

// RoomKey is the prefix of a room's keys; the braces make them one hash slot.
func RoomKey(room string) string { return "gw:{" + room + "}:" }

func (r *Redis) idemKey(room, user, key string) string {
	if r.keys {
		return "gw:{u:" + user + "}:k:" + key
	}
	return r.opt.Layout.RoomKey(room) + "k:" + user + ":" + key
}

func newEpoch() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Sentinels the encoder is called with, to find where the script must put
// the real seq and ts: values no real message has.
const (
	seqSentinel = uint64(987654321987654321)
	tsSentinel  = int64(-987654321987654321)
)

// appendLua is in append.lua.
//
//go:embed append.lua
var appendLua string

var appendScript = redis.NewScript(appendLua)

// Append implements Store.
func (r *Redis) Append(room, user, key string, enc Encoder) (Message, Ack, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opt.Timeout)
	defer cancel()
	if key != "" {
		// Checked before encoding, so a retry costs no encoding; the
		// script checks again, atomically.
		if prev, err := r.c.Get(ctx, r.idemKey(room, user, key)).Result(); err == nil {
			ack, err := parseAck(prev)
			return Message{}, ack, true, err
		} else if !errors.Is(err, redis.Nil) {
			return Message{}, Ack{}, false, unavailable(err)
		}
	}
	p, err := r.Prepare(room, user, key, enc)
	if err != nil {
		return Message{}, Ack{}, false, err
	}
	ack, dup, err := ParseAppend(room, appendScript.Run(ctx, r.c, p.keys, p.args...))
	if err != nil || dup {
		return Message{}, ack, dup, err
	}
	return Message{Seq: ack.Seq, TS: ack.TS, Frame: enc(ack.Seq, ack.TS)}, ack, false, nil
}

// Prepared is an append ready to be sent, alone or in a pipeline.
type Prepared struct {
	keys []string
	args []any
}

// Prepare encodes the message template of an append.
func (r *Redis) Prepare(room, user, key string, enc Encoder) (Prepared, error) {
	tmpl := enc(seqSentinel, tsSentinel)
	p1, p2, p3, err := splitTemplate(tmpl[codec.HeaderLen(tmpl):])
	if err != nil {
		return Prepared{}, err
	}
	rk := r.opt.Layout.RoomKey(room)
	keys := []string{rk + "s", rk + "h", rk + "e"}
	if key != "" {
		keys = append(keys, r.idemKey(room, user, key))
	}
	channel := ""
	if r.opt.Channel != nil {
		channel = r.opt.Channel(room)
	}
	return Prepared{keys: keys, args: []any{p1, p2, p3, r.opt.Size, r.opt.TTL.Milliseconds(),
		KeyTTL.Milliseconds(), newEpoch(), channel, r.opt.Origin, room, r.publishCmd()}}, nil
}

// publishCmd is the command the append script publishes with.
func (r *Redis) publishCmd() string {
	if r.opt.Layout.Sharded {
		return "SPUBLISH"
	}
	return "PUBLISH"
}

// Queue adds p to a pipeline by the script's SHA (see LoadScripts).
func (r *Redis) Queue(ctx context.Context, pipe redis.Pipeliner, p Prepared) *redis.Cmd {
	return appendScript.EvalSha(ctx, pipe, p.keys, p.args...)
}

// LoadScripts loads the store's scripts into Redis, for the EVALSHA of
// Queue and QueueRange.
func (r *Redis) LoadScripts(ctx context.Context) error {
	if err := appendScript.Load(ctx, r.c).Err(); err != nil {
		return unavailable(err)
	}
	if err := rangeScript.Load(ctx, r.c).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// IsNoScript reports whether err says Redis does not have the script (it
// restarted): load the scripts and send again.
func IsNoScript(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") }

// ParseAppend reads the ack of an append script's reply.
func ParseAppend(room string, cmd *redis.Cmd) (Ack, bool, error) {
	res, err := cmd.StringSlice()
	if err != nil {
		if IsNoScript(err) {
			return Ack{}, false, err
		}
		return Ack{}, false, unavailable(err)
	}
	if len(res) == 2 && res[0] == "dup" {
		ack, err := parseAck(res[1])
		return ack, true, err
	}
	if len(res) != 2 {
		return Ack{}, false, fmt.Errorf("history: append script returned %q", res)
	}
	seq, err1 := strconv.ParseUint(res[0], 10, 64)
	ts, err2 := strconv.ParseInt(res[1], 10, 64)
	if err1 != nil || err2 != nil {
		return Ack{}, false, fmt.Errorf("history: append script returned %q", res)
	}
	return Ack{Room: room, Seq: seq, TS: ts}, false, nil
}

// splitTemplate cuts a message payload encoded with the sentinels into the
// parts around its seq and ts. The codec writes "seq" and "ts" before any
// client-supplied value, so their first occurrences are the fields.
func splitTemplate(p []byte) (string, string, string, error) {
	seqField := []byte(`"seq":` + strconv.FormatUint(seqSentinel, 10))
	tsField := []byte(`"ts":` + strconv.FormatInt(tsSentinel, 10))
	i := bytes.Index(p, seqField)
	j := bytes.Index(p, tsField)
	if i < 0 || j < i {
		return "", "", "", fmt.Errorf("history: message encoding lacks seq and ts in order")
	}
	a := i + len(`"seq":`)
	b := j + len(`"ts":`)
	return string(p[:a]), string(p[a+len(seqField)-len(`"seq":`) : b]), string(p[b+len(tsField)-len(`"ts":`):]), nil
}

func parseAck(s string) (Ack, error) {
	parts := strings.SplitN(s, "|", 3)
	if len(parts) != 3 {
		return Ack{}, fmt.Errorf("history: bad idempotency record %q", s)
	}
	seq, err1 := strconv.ParseUint(parts[1], 10, 64)
	ts, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return Ack{}, fmt.Errorf("history: bad idempotency record %q", s)
	}
	return Ack{Room: parts[0], Seq: seq, TS: ts}, nil
}

// rangeLua is in range.lua.
//
//go:embed range.lua
var rangeLua string

var rangeScript = redis.NewScript(rangeLua)

// maxLuaSeq bounds seqs passed to Lua, whose numbers are doubles.
const maxLuaSeq = 1 << 52

// Range implements Store.
func (r *Redis) Range(room string, after, before uint64, limit int) (Page, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opt.Timeout)
	defer cancel()
	keys, args := r.rangeArgs(room, after, before, limit)
	return ParseRange(rangeScript.Run(ctx, r.c, keys, args...))
}

// QueueRange queues Range's script on pipe (EVALSHA: a Redis that lost its scripts answers NOSCRIPT, see IsNoScript and LoadScripts); ParseRange reads its reply.
func (r *Redis) QueueRange(ctx context.Context, pipe redis.Pipeliner, room string, after, before uint64, limit int) *redis.Cmd {
	keys, args := r.rangeArgs(room, after, before, limit)
	return rangeScript.EvalSha(ctx, pipe, keys, args...)
}

// rangeArgs are the KEYS and ARGV of the range script.
func (r *Redis) rangeArgs(room string, after, before uint64, limit int) ([]string, []any) {
	after, before = min(after, maxLuaSeq), min(before, maxLuaSeq)
	rk := r.opt.Layout.RoomKey(room)
	return []string{rk + "s", rk + "h", rk + "e"},
		[]any{after, before, limit, newEpoch(), r.opt.TTL.Milliseconds()}
}

// ParseRange reads the page of a range script's reply. A NOSCRIPT error is
// returned as is (see IsNoScript); other failures wrap ErrUnavailable.
func ParseRange(c *redis.Cmd) (Page, error) {
	res, err := c.StringSlice()
	if err != nil {
		if IsNoScript(err) {
			return Page{}, err
		}
		return Page{}, unavailable(err)
	}
	if len(res) < 3 {
		return Page{}, fmt.Errorf("history: range script returned %q", res)
	}
	latest, err := strconv.ParseUint(res[0], 10, 64)
	if err != nil {
		return Page{}, fmt.Errorf("history: range script returned %q", res)
	}
	var msgs []Message
	for _, item := range res[3:] {
		m, err := parseItem(item)
		if err != nil {
			return Page{}, err
		}
		msgs = append(msgs, m)
	}
	return Page{Messages: msgs, Latest: latest, Epoch: res[1], Complete: res[2] == "1"}, nil
}

// parseItem turns a history entry "seq|ts|payload" into a Message with a
// complete frame.
func parseItem(item string) (Message, error) {
	s, rest, ok1 := strings.Cut(item, "|")
	t, payload, ok2 := strings.Cut(rest, "|")
	seq, err1 := strconv.ParseUint(s, 10, 64)
	ts, err2 := strconv.ParseInt(t, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return Message{}, fmt.Errorf("history: bad entry %.40q", item)
	}
	return Message{Seq: seq, TS: ts, Frame: TextFrame(payload)}, nil
}

// TextFrame makes a complete unmasked text frame of payload.
func TextFrame(payload string) []byte {
	f := codec.NewFrame()
	f.B = append(f.B, payload...)
	out := f.Owned()
	f.Release()
	return out
}

// Close implements Store; the client is the caller's.
func (r *Redis) Close() error { return nil }

func unavailable(err error) error { return fmt.Errorf("%w: %v", ErrUnavailable, err) }
