package wstest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/internal/wstest"
)

// server answers each request {"id": X} with two events, the reply
// {"type": "reply", "id": X}, and one more event; a request of type "bye"
// gets a close frame 4000 instead. Upgrades without ?user= are refused 401.
func server(t *testing.T) string {
	up := websocket.Upgrader{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("user") == "" {
			http.Error(w, "who?", http.StatusUnauthorized)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.WriteJSON(map[string]any{"type": "welcome", "user": r.URL.Query().Get("user")})
		for n := 0; ; {
			var req map[string]any
			if ws.ReadJSON(&req) != nil {
				return
			}
			if req["type"] == "bye" {
				_ = ws.WriteJSON(map[string]any{"type": "event", "n": n + 1})
				_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"))
				return
			}
			for _, f := range []map[string]any{
				{"type": "event", "n": n + 1}, {"type": "event", "n": n + 2},
				{"type": "reply", "id": req["id"]}, {"type": "event", "n": n + 3},
			} {
				_ = ws.WriteJSON(f)
			}
			n += 3
		}
	}))
	t.Cleanup(s.Close)
	return "ws" + strings.TrimPrefix(s.URL, "http") + "/"
}

func TestUpgradeStatus(t *testing.T) {
	u := server(t)
	if code, ws := wstest.Upgrade(t, u); code != 401 || ws != nil {
		t.Fatalf("without a user: HTTP %d, %v", code, ws)
	}
	if code, ws := wstest.Upgrade(t, u+"?user=a", wstest.Header(http.Header{"X-Test": {"1"}})); code != 101 || ws == nil {
		t.Fatalf("with a user: HTTP %d, %v", code, ws)
	}
}

// Frames read past a reply are held, in order, for the next reads.
func TestRequestHoldsFramesInOrder(t *testing.T) {
	c := wstest.Dial(t, server(t)+"?user=alice")
	if c.User != "alice" {
		t.Fatalf("User %q, want alice (from the URL)", c.User)
	}
	if w := c.Next(); w.Str("type") != "welcome" || w.Str("user") != "alice" {
		t.Fatalf("first frame %v", w)
	}
	if r := c.Request(map[string]any{"type": "req", "id": "1"}); r.Str("type") != "reply" {
		t.Fatalf("reply %v", r)
	}
	// Held: events 1 and 2. Then event 3 from the socket.
	for want := uint64(1); want <= 3; want++ {
		if f := c.Next(); f.Num("n") != want {
			t.Fatalf("frame %v, want event %d", f, want)
		}
	}
	// A second request holds events 4 and 5; WaitFor reads the held ones
	// first, skipping into Seen.
	c.Request(map[string]any{"type": "req", "id": "2"})
	if f := c.WaitFor("event", func(f wstest.Frame) bool { return f.Num("n") == 5 }); f.Num("n") != 5 {
		t.Fatalf("WaitFor %v", f)
	}
	if len(c.Seen) != 1 || c.Seen[0].Num("n") != 4 {
		t.Fatalf("Seen %v, want event 4", c.Seen)
	}
	if f := c.WaitFor("", nil); f.Num("n") != 6 {
		t.Fatalf(`WaitFor("") %v, want event 6`, f)
	}
	c.Quiet("", 100*time.Millisecond)
	// UntilClose returns the held frames first, then the rest, and the code.
	c.Request(map[string]any{"type": "req", "id": "3"})
	c.Send(map[string]any{"type": "bye"})
	got, code := c.UntilClose()
	if code != 4000 {
		t.Fatalf("close code %d, want 4000", code)
	}
	var ns []uint64
	for _, f := range got {
		ns = append(ns, f.Num("n"))
	}
	if len(ns) != 4 || ns[0] != 7 || ns[1] != 8 || ns[2] != 9 || ns[3] != 10 {
		t.Fatalf("UntilClose frames %v, want events 7 to 10", ns)
	}
}

func TestExpectClose(t *testing.T) {
	c := wstest.Dial(t, server(t)+"?user=bob")
	c.Send(`{"type":"bye"}`)
	c.ExpectClose(4000)
}

func TestExpectError(t *testing.T) {
	wstest.ExpectError(t, wstest.Frame{"type": "error", "code": "bad_request", "message": "no"}, "bad_request")
}
