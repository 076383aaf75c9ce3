package hub_test

import (
	"encoding/binary"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/hub"
)

// recorder is an in-memory hub.Sink: a stand-in for the socket, so the hub's
// logic runs under the race detector without a server. It keeps every byte
// written, in order, and whether it was closed.
type recorder struct {
	mu     sync.Mutex
	buf    []byte
	writes int
	closes int
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.buf = append(r.buf, b...)
	r.writes++
	r.mu.Unlock()
	return len(b), nil
}

func (r *recorder) Close() error {
	r.mu.Lock()
	r.closes++
	r.mu.Unlock()
	return nil
}

// Bytes returns a copy of everything written so far.
func (r *recorder) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.buf...)
}

// Writes returns how many Write calls carried bytes or not.
func (r *recorder) Writes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes
}

// Closes returns how many times Close was called.
func (r *recorder) Closes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closes
}

// Frames splits the byte stream back into WebSocket frames; it fails the
// test on anything that is not a complete unmasked server frame.
func (r *recorder) Frames(t *testing.T) []wsFrame {
	t.Helper()
	return splitFrames(t, r.Bytes())
}

// gateSink is a recorder whose next Write, once armed, blocks until
// released: it stalls the fan-out worker that writes to it.
type gateSink struct {
	recorder
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

// newGateSink returns a gate sink that is opened at the latest when the test
// ends, so a failing test does not leave a worker blocked (and Hub.Stop
// waiting for it). Create the hub first: cleanups run last-in first-out.
func newGateSink(t *testing.T) *gateSink {
	g := &gateSink{entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

// arm makes the next Write block until open is called.
func (g *gateSink) arm() { g.armed.Store(true) }

func (g *gateSink) Write(b []byte) (int, error) {
	if g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-g.release
	}
	return g.recorder.Write(b)
}

// waitBlocked waits until a Write is blocked in the gate.
func (g *gateSink) waitBlocked(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no write reached the gate")
	}
}

func (g *gateSink) open() { g.once.Do(func() { close(g.release) }) }

// wsFrame is one parsed server frame.
type wsFrame struct {
	op      byte // opcode: 1 text, 8 close, 9 ping
	payload []byte
}

func splitFrames(t *testing.T, b []byte) []wsFrame {
	t.Helper()
	var out []wsFrame
	for len(b) > 0 {
		if len(b) < 2 {
			t.Fatalf("truncated frame header: % x", b)
		}
		if b[0]&0x80 == 0 || b[0]&0x70 != 0 {
			t.Fatalf("frame without FIN or with RSV bits: %#x", b[0])
		}
		if b[1]&0x80 != 0 {
			t.Fatalf("server frame is masked")
		}
		hl, n := 2, uint64(b[1]&0x7F)
		switch n {
		case 126:
			if len(b) < 4 {
				t.Fatalf("truncated 16-bit length")
			}
			hl, n = 4, uint64(binary.BigEndian.Uint16(b[2:4]))
		case 127:
			if len(b) < 10 {
				t.Fatalf("truncated 64-bit length")
			}
			hl, n = 10, binary.BigEndian.Uint64(b[2:10])
		}
		if uint64(len(b)-hl) < n {
			t.Fatalf("truncated frame: header says %d payload bytes, %d left", n, len(b)-hl)
		}
		out = append(out, wsFrame{op: b[0] & 0x0F, payload: b[hl : hl+int(n)]})
		b = b[hl+int(n):]
	}
	return out
}

// body is the part of a frame's JSON the tests look at.
type body struct {
	Type string `json:"type"`
	Room string `json:"room"`
	Seq  uint64 `json:"seq"`
	User string `json:"user"`
}

func decode(t *testing.T, f wsFrame) body {
	t.Helper()
	if f.op != 1 {
		t.Fatalf("want a text frame, got opcode %d (% x)", f.op, f.payload)
	}
	var b body
	if err := json.Unmarshal(f.payload, &b); err != nil {
		t.Fatalf("frame payload %q: %v", f.payload, err)
	}
	return b
}

// describe renders frames as "joined:3 message:4 ping close:4001" for
// comparisons and failure messages.
func describe(t *testing.T, frames []wsFrame) []string {
	t.Helper()
	out := make([]string, 0, len(frames))
	for _, f := range frames {
		switch f.op {
		case 9:
			out = append(out, "ping")
		case 8:
			code := 0
			if len(f.payload) >= 2 {
				code = int(binary.BigEndian.Uint16(f.payload))
			}
			out = append(out, "close:"+itoa(uint64(code)))
		default:
			b := decode(t, f)
			s := b.Type
			if b.Type == "message" || b.Type == "joined" {
				s += ":" + itoa(b.Seq)
			}
			out = append(out, s)
		}
	}
	return out
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

func equalStrings(a, b []string) bool {
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

// messageFrame is a real codec message frame of room with seq.
func messageFrame(room string, seq uint64) []byte {
	text := "hello from the hub tests"
	f := codec.NewFrame()
	f.B = codec.AppendMessage(f.B, &codec.Message{Room: room, Seq: seq, TS: 1763779200123, From: "alice", Text: &text})
	out := f.Owned()
	f.Release()
	return out
}

// joinedFrame is a real codec joined frame of room covering seq.
func joinedFrame(room string, seq uint64) []byte {
	f := codec.NewFrame()
	f.B = codec.AppendJoined(f.B, &codec.Joined{Room: room, Seq: seq, Epoch: "e1", Messages: [][]byte{}})
	out := f.Owned()
	f.Release()
	return out
}

// eventFrame is a seq-less event (typing) from user in room.
func eventFrame(room, user string) []byte {
	f := codec.NewFrame()
	f.B = codec.AppendTyping(f.B, room, user)
	out := f.Owned()
	f.Release()
	return out
}

// roomSeq stands in for the history store: the room's latest seq, only
// touched inside Join and Publish callbacks, that is under the room's lock.
type roomSeq struct {
	room   string
	latest uint64
}

// publish stores and fans out the room's next message.
func (s *roomSeq) publish(h *hub.Hub) {
	h.Publish(s.room, func() ([]byte, uint64, bool) {
		s.latest++
		return messageFrame(s.room, s.latest), s.latest, true
	})
}

// join joins c with a joined frame covering the room's latest seq.
func (s *roomSeq) join(t *testing.T, h *hub.Hub, c *hub.Client) hub.JoinResult {
	t.Helper()
	res, err := h.Join(c, s.room, func() ([]byte, uint64, error) {
		return joinedFrame(s.room, s.latest), s.latest, nil
	})
	if err != nil {
		t.Fatalf("join %s: %v", s.room, err)
	}
	return res
}

// join joins c to room with a joined frame covering seq 0.
func join(t *testing.T, h *hub.Hub, c *hub.Client, room string) hub.JoinResult {
	t.Helper()
	res, err := h.Join(c, room, func() ([]byte, uint64, error) {
		return joinedFrame(room, 0), 0, nil
	})
	if err != nil {
		t.Fatalf("join %s: %v", room, err)
	}
	return res
}

// connect makes a client of user and joins it to the user's inbox, as the
// gateway does before anything else: the hub finds a user's connections
// through its inbox (see Room).
func connect(t *testing.T, h *hub.Hub, user string, s hub.Sink) *hub.Client {
	t.Helper()
	c := h.NewClient(user, s, now())
	join(t, h, c, codec.Inbox(user))
	return c
}

// newHub returns a hub stopped at the end of the test.
func newHub(t *testing.T, cfg hub.Config) *hub.Hub {
	t.Helper()
	h := hub.New(cfg)
	t.Cleanup(h.Stop)
	return h
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// seqRun returns "message:from" .. "message:to".
func seqRun(from, to uint64) []string {
	var out []string
	for s := from; s <= to; s++ {
		out = append(out, "message:"+itoa(s))
	}
	return out
}

func now() int64 { return time.Now().UnixNano() }

// diff describes where got first departs from want.
func diff(got, want []string) string {
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			return "at " + itoa(uint64(i)) + ": got " + got[i] + ", want " + want[i]
		}
	}
	return "got " + itoa(uint64(len(got))) + " frames, want " + itoa(uint64(len(want)))
}

// ackFrame is a real codec ack frame for request id.
func ackFrame(id string) []byte {
	f := codec.NewFrame()
	f.B = codec.AppendAck(f.B, id, "r", 1, 1763779200123)
	out := f.Owned()
	f.Release()
	return out
}
