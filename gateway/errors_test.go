package gateway_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway"
)

// Every error code and close code the core can produce, over real sockets.

func TestBadRequests(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	cases := []struct{ name, frame, id string }{
		{"malformed JSON", `{"type":"join","id":"m1","room":`, ""},
		{"not an object", `[1,2,3]`, ""},
		{"missing type", `{"id":"m2","room":"general"}`, "m2"},
		{"type not a string", `{"type":5,"id":"m3"}`, "m3"},
		{"wrong field type", `{"type":"join","id":"m4","room":"general","limit":"ten"}`, "m4"},
		{"bad room name", `{"type":"join","id":"m5","room":"no spaces"}`, "m5"},
		{"room too long", `{"type":"join","id":"m6","room":"` + strings.Repeat("r", 65) + `"}`, "m6"},
		{"missing room", `{"type":"send","id":"m7","text":"hi"}`, "m7"},
		{"empty message", `{"type":"send","id":"m8","room":"general"}`, "m8"},
		{"dm without to", `{"type":"dm","id":"m9","text":"hi"}`, "m9"},
		{"dm to a bad name", `{"type":"dm","id":"m10","to":"b b","text":"hi"}`, "m10"},
		{"negative limit", `{"type":"join","id":"m11","room":"general","limit":-1}`, "m11"},
		{"read without seq", `{"type":"read","id":"m12","room":"general"}`, "m12"},
		{"id too long", `{"type":"ping","id":"` + strings.Repeat("i", 65) + `"}`, ""},
		{"key too long", `{"type":"send","id":"m13","room":"general","text":"x","key":"` + strings.Repeat("k", 65) + `"}`, "m13"},
	}
	a.Join("general")
	for _, tc := range cases {
		a.Send(tc.frame)
		f := a.WaitFor("error", nil)
		if f.Str("code") != "bad_request" || f.Str("id") != tc.id || f.Str("message") == "" {
			t.Errorf("%s: got %v, want bad_request with id %q", tc.name, f, tc.id)
		}
	}
	// Binary frames are answered, not fatal.
	if err := a.WS.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	expectError(t, a.WaitFor("error", nil), "bad_request")
	// And nothing above broke the connection or lost state.
	if ack := a.SendText("general", "still here"); ack.Num("seq") != 1 {
		t.Fatalf("ack after bad input: %v", ack)
	}
}

func TestUnknownType(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	f := a.Request(map[string]any{"type": "teleport", "id": "u1"})
	expectError(t, f, "unknown_type")
}

func TestNotJoined(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	for _, req := range []map[string]any{
		{"type": "send", "id": "n1", "room": "general", "text": "hi"},
		{"type": "history", "id": "n2", "room": "general"},
		{"type": "typing", "id": "n3", "room": "general"},
		{"type": "read", "id": "n4", "room": "general", "seq": 3},
		{"type": "leave", "id": "n5", "room": "general"},
	} {
		expectError(t, a.Request(req), "not_joined")
	}
}

func TestForbidden(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	expectError(t, a.Request(map[string]any{"type": "send", "id": "f1", "room": "@alice", "text": "x"}), "forbidden")
	expectError(t, a.Request(map[string]any{"type": "leave", "id": "f2", "room": "@alice"}), "forbidden")
	expectError(t, a.Request(map[string]any{"type": "join", "id": "f3", "room": "@bob"}), "forbidden")
}

func TestTooManyRooms(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.MaxRooms = 3; c.Burst = 100 })
	a := n.dial(t, "alice")
	for i := 0; i < 3; i++ {
		a.Join(fmt.Sprint("r", i))
	}
	expectError(t, a.Request(map[string]any{"type": "join", "id": "x", "room": "r3"}), "too_many_rooms")
	// Re-joining a room already joined and the inbox are not new rooms.
	a.Join("r1")
	a.Join("@alice")
	// Leaving frees a place.
	a.Request(map[string]any{"type": "leave", "id": "l", "room": "r0"})
	a.Join("r3")
}

func TestRateLimitAndAbuseClose(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.Rate = 1; c.Burst = 5 })
	a := n.dial(t, "alice")
	for i := 0; i < 5; i++ {
		if f := a.Request(map[string]any{"type": "presence", "id": fmt.Sprint("p", i), "room": "general"}); f.Str("type") != "presence" {
			t.Fatalf("within burst: %v", f)
		}
	}
	expectError(t, a.Request(map[string]any{"type": "presence", "id": "over", "room": "general"}), "rate_limited")
	// Application ping is never limited.
	if f := a.Request(map[string]any{"type": "ping", "id": "pp"}); f.Str("type") != "pong" {
		t.Fatalf("ping while limited: %v", f)
	}
	// Refused frames without an id are dropped silently.
	a.Send(map[string]any{"type": "typing", "room": "general"})
	a.Quiet("error", 200*time.Millisecond)
	// 10 refusals within 10 s: closed with 4002 (two refusals so far).
	for i := 0; i < 8; i++ {
		a.Send(map[string]any{"type": "presence", "id": fmt.Sprint("x", i), "room": "general"})
	}
	a.ExpectClose(4002)
}

func TestMessageSizeLimit(t *testing.T) {
	const max = 1024
	n := startNode(t, func(c *gateway.Config) { c.MaxMessageBytes = max })
	a := n.dial(t, "alice")
	a.Join("general")
	frameOf := func(size int) string {
		head := `{"type":"send","id":"big","room":"general","text":"`
		tail := `"}`
		return head + strings.Repeat("x", size-len(head)-len(tail)) + tail
	}
	exact := frameOf(max)
	if len(exact) != max {
		t.Fatal("test frame has the wrong size")
	}
	a.Send(exact)
	if ack := a.WaitFor("ack", nil); ack.Num("seq") != 1 {
		t.Fatalf("exactly max_message_bytes: %v", ack)
	}
	a.Send(frameOf(max + 1))
	a.ExpectClose(1009)
}

// The size limit applies to a message after joining its fragments, and
// fragments within it make one request. Sent as real fragments: a client
// library may buffer its writes into one frame.
func TestFragmentedMessageMeasuredWhole(t *testing.T) {
	const max = 1024
	n := startNode(t, func(c *gateway.Config) { c.MaxMessageBytes = max })
	fragments := func(a *client, msg string) {
		t.Helper()
		for i := 0; i < len(msg); i += 100 {
			end := min(i+100, len(msg))
			var first byte // continuation
			if i == 0 {
				first = 0x01 // text
			}
			if end == len(msg) {
				first |= 0x80 // FIN
			}
			if _, err := a.WS.UnderlyingConn().Write(rawFrame(first, []byte(msg[i:end]))); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := n.dial(t, "alice")
	// Nine fragments of at most 100 bytes, 900 in all: one ping.
	under := `{"type":"ping","id":"frag","pad":"` + strings.Repeat("p", 900-36) + `"}`
	fragments(a, under)
	if f := a.Next(); f.Str("type") != "pong" || f.Str("id") != "frag" {
		t.Fatalf("a %d-byte message in fragments: %v, want its pong", len(under), f)
	}
	// Eleven fragments, each small, 1,100 bytes together: over the limit.
	fragments(a, `{"type":"ping","id":"big","pad":"`+strings.Repeat("p", 1100-35)+`"}`)
	a.ExpectClose(1009)
}

// A bug in a handler costs its own connection (1011), not the node or
// another connection: the panic is provoked through the real read path.
func TestHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	gateway.SetHandleHook(func(req *codec.Request) {
		if req.Type == "ping" && req.ID == "boom" {
			panic("provoked by the test")
		}
	})
	t.Cleanup(func() { gateway.SetHandleHook(nil) })
	n := startNode(t, nil)
	a, b := n.dial(t, "alice"), n.dial(t, "bob")
	b.Join("general")
	a.Send(map[string]any{"type": "ping", "id": "boom"})
	a.ExpectClose(1011)
	if f := b.Request(map[string]any{"type": "ping", "id": "still"}); f.Str("type") != "pong" {
		t.Fatalf("another connection after the panic: %v", f)
	}
	c := n.dial(t, "carol")
	c.Join("general")
	c.SendText("general", "the node lives")
}

func TestInvalidUTF8Closes1007(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	if err := a.WS.WriteMessage(websocket.TextMessage, []byte("{\"type\":\"ping\",\"id\":\"\xff\xfe\"}")); err != nil {
		t.Fatal(err)
	}
	a.ExpectClose(1007)
}

// rawFrame builds a masked client frame by hand, for what a well-behaved
// library refuses to send.
func rawFrame(first byte, payload []byte) []byte {
	b := []byte{first, 0x80 | byte(len(payload)), 1, 2, 3, 4}
	for i, c := range payload {
		b = append(b, c^b[2+i%4])
	}
	return b
}

func TestProtocolViolationCloses1002(t *testing.T) {
	n := startNode(t, nil)
	for name, first := range map[string]byte{
		"reserved bits set": 0x81 | 0x20,
		"reserved opcode":   0x83,
		"fragmented ping":   0x09,
	} {
		t.Run(name, func(t *testing.T) {
			a := n.dial(t, "alice")
			if _, err := a.WS.UnderlyingConn().Write(rawFrame(first, []byte(`{}`))); err != nil {
				t.Fatal(err)
			}
			a.ExpectClose(1002)
		})
	}
}

// A continuation frame with no message to continue is refused by nbio
// after parsing, where the gateway cannot add a close frame: the socket is
// dropped (clients see 1006). Documented in docs/protocol.md.
func TestOrphanContinuationDropsConnection(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	if _, err := a.WS.UnderlyingConn().Write(rawFrame(0x80, []byte(`{}`))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Closed:
	case <-time.After(waitFrame):
		t.Fatal("connection not closed after an orphan continuation frame")
	}
	// The node is unaffected.
	b := n.dial(t, "bob")
	b.Request(map[string]any{"type": "ping", "id": "ok"})
}

func TestClientCloseIsEchoed(t *testing.T) {
	n := startNode(t, nil)
	a := n.dial(t, "alice")
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := a.WS.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	a.ExpectClose(1000)
}

func TestHeartbeat(t *testing.T) {
	const hb = time.Second
	n := startNode(t, func(c *gateway.Config) { c.Heartbeat = hb })
	live := n.dial(t, "alive") // gorilla answers pings by itself
	silent := n.dial(t, "silent")
	pings := make(chan struct{}, 16)
	silent.WS.SetPingHandler(func(string) error { pings <- struct{}{}; return nil }) // never answers
	start := time.Now()
	select {
	case <-pings:
	case <-time.After(2 * hb):
		t.Fatal("no WebSocket ping within one heartbeat")
	}
	silent.ExpectClose(1000)
	took := time.Since(start)
	// Between 2 and 3 heartbeats after the last frame (the dial), with
	// slack for scheduling.
	if took < 2*hb-100*time.Millisecond || took > 3*hb+500*time.Millisecond {
		t.Fatalf("silent connection closed after %v, want 2-3 x %v", took, hb)
	}
	// The answering connection is still open.
	if f := live.Request(map[string]any{"type": "ping", "id": "ok"}); f.Str("type") != "pong" {
		t.Fatalf("live connection: %v", f)
	}
}

func TestCloseFrameFormat(t *testing.T) {
	// Guards rawFrame, on which the 1002 test depends.
	b := rawFrame(0x81, []byte("ab"))
	if len(b) != 8 || b[1] != 0x82 || binary.BigEndian.Uint32(b[2:6]) != 0x01020304 || b[6] != 'a'^1 {
		t.Fatalf("rawFrame = % x", b)
	}
}
