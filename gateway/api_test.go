package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/chatgw/gateway/gateway"
)

// apiCall makes a server API request with key (none when "") and returns
// the status and decoded JSON reply.
func apiCall(t *testing.T, n *node, method, path, key string, body any) (int, frame) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = bytes.NewBufferString(s)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, "http://"+n.srv.AdminAddr()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	var f frame
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		t.Fatalf("%s %s: reply is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, f
}

func apiNode(t *testing.T) *node {
	return startNode(t, func(c *gateway.Config) { c.APIKey = "s3cret" })
}

func TestAPIPublishReachesMembersWithNextSeq(t *testing.T) {
	n := apiNode(t)
	alice := n.dial(t, "alice")
	alice.Join("general")
	a := alice.SendText("general", "first")
	if a.Num("seq") != 1 {
		t.Fatalf("first send: %v", a)
	}
	status, r := apiCall(t, n, "POST", "/api/publish", "s3cret",
		map[string]any{"room": "general", "text": "from the backend", "from": "bot"})
	if status != 200 || r.Num("seq") != 2 || r.Str("room") != "general" || r.Num("ts") == 0 {
		t.Fatalf("publish: %d %v", status, r)
	}
	m := alice.WaitFor("message", func(f frame) bool { return f.Num("seq") == 2 })
	if m.Str("text") != "from the backend" || m.Str("from") != "bot" {
		t.Fatalf("member got %v", m)
	}
	// Data, default sender, and the idempotency key as for a client send.
	body := map[string]any{"room": "general", "data": map[string]any{"kind": "alert"}, "key": "k1"}
	_, r1 := apiCall(t, n, "POST", "/api/publish", "s3cret", body)
	_, r2 := apiCall(t, n, "POST", "/api/publish", "s3cret", body)
	if r1.Num("seq") != 3 || r2.Num("seq") != 3 || r2["duplicate"] != true {
		t.Fatalf("retry with key: %v then %v", r1, r2)
	}
	m = alice.WaitFor("message", func(f frame) bool { return f.Num("seq") == 3 })
	if m.Str("from") != "server" {
		t.Fatalf("default sender: %v", m)
	}
	alice.Quiet("message", 200*time.Millisecond)
	// History has it too, as for any message.
	h := alice.Request(map[string]any{"type": "history", "id": "h", "room": "general"})
	if msgs, _ := h["messages"].([]any); len(msgs) != 3 {
		t.Fatalf("history after API publishes: %v", h)
	}
}

func TestAPIKeyRequired(t *testing.T) {
	n := apiNode(t)
	for _, key := range []string{"", "wrong", "s3cret-but-longer"} {
		for _, c := range []struct{ method, path string }{
			{"POST", "/api/publish"}, {"GET", "/api/rooms/general/presence"},
			{"POST", "/api/disconnect"}, {"GET", "/api/stats"},
		} {
			status, r := apiCall(t, n, c.method, c.path, key, map[string]any{"room": "general", "text": "x"})
			if status != 401 || r.Str("code") != "unauthorized" || r.Str("message") == "" {
				t.Errorf("%s %s with key %q: %d %v, want 401 unauthorized", c.method, c.path, key, status, r)
			}
		}
	}
	// A node without --api-key has the API off.
	off := startNode(t, nil)
	if status, r := apiCall(t, off, "GET", "/api/stats", "anything", nil); status != 403 || r.Str("code") != "forbidden" {
		t.Fatalf("API off: %d %v", status, r)
	}
}

func TestAPIBadInputIsAClearError(t *testing.T) {
	n := apiNode(t)
	for _, c := range []struct {
		body any
		want string
	}{
		{`{"room":"general","text":"x"`, "not the expected JSON"},
		{map[string]any{"room": "general", "txt": "x"}, "unknown field"},
		{map[string]any{"text": "x"}, `missing "room"`},
		{map[string]any{"room": "bad room", "text": "x"}, "invalid room name"},
		{map[string]any{"room": "@bob", "text": "x"}, "inboxes"},
		{map[string]any{"room": "general"}, `"text" or a "data"`},
		{map[string]any{"room": "general", "text": "x", "from": "a b"}, `"from"`},
	} {
		status, r := apiCall(t, n, "POST", "/api/publish", "s3cret", c.body)
		if status != 400 || r.Str("code") != "bad_request" || !bytes.Contains([]byte(r.Str("message")), []byte(c.want)) {
			t.Errorf("publish %v: %d %v, want 400 bad_request mentioning %q", c.body, status, r, c.want)
		}
	}
	// Nothing was stored by the refused requests.
	_, r := apiCall(t, n, "POST", "/api/publish", "s3cret", map[string]any{"room": "general", "text": "ok"})
	if r.Num("seq") != 1 {
		t.Fatalf("first accepted publish got seq %v", r["seq"])
	}
	if status, r := apiCall(t, n, "GET", "/api/nope", "s3cret", nil); status != 404 || r.Str("code") != "bad_request" {
		t.Fatalf("unknown route: %d %v", status, r)
	}
}

func TestAPIPresenceAndDisconnect(t *testing.T) {
	n := apiNode(t)
	bob1, bob2, carol := n.dial(t, "bob"), n.dial(t, "bob"), n.dial(t, "carol")
	bob1.Join("general")
	carol.Join("general")
	status, r := apiCall(t, n, "GET", "/api/rooms/general/presence", "s3cret", nil)
	users, _ := r["users"].([]any)
	if status != 200 || r.Num("total") != 2 || len(users) != 2 || users[0] != "bob" || users[1] != "carol" {
		t.Fatalf("presence: %d %v", status, r)
	}
	status, r = apiCall(t, n, "POST", "/api/disconnect", "s3cret", map[string]any{"user": "bob", "code": 4100, "reason": "banned"})
	if status != 200 || r.Num("closed") != 2 {
		t.Fatalf("disconnect: %d %v", status, r)
	}
	bob1.ExpectClose(4100)
	bob2.ExpectClose(4100)
	carol.WaitFor("presence", func(f frame) bool { return f.Str("user") == "bob" && f["online"] == false })
	_, r = apiCall(t, n, "GET", "/api/rooms/general/presence", "s3cret", nil)
	if r.Num("total") != 1 {
		t.Fatalf("presence after disconnect: %v", r)
	}
	if status, r := apiCall(t, n, "POST", "/api/disconnect", "s3cret", map[string]any{"user": "carol", "code": 1006}); status != 400 {
		t.Fatalf("close code 1006 (reserved): %d %v", status, r)
	}
	if status, r := apiCall(t, n, "POST", "/api/disconnect", "s3cret", map[string]any{"user": "nobody"}); status != 200 || r.Num("closed") != 0 {
		t.Fatalf("unknown user: %d %v", status, r)
	}
}

func TestAPIStats(t *testing.T) {
	n := apiNode(t)
	a := n.dial(t, "a")
	a.Join("r")
	a.SendText("r", "x")
	status, r := apiCall(t, n, "GET", "/api/stats", "s3cret", nil)
	if status != 200 || r.Num("connections") != 1 || r.Num("rooms") != 2 || r.Str("node") != "test-node" ||
		r.Num("messages_total") != 1 || r["uptime_seconds"] == nil || r["messages_per_second"] == nil {
		t.Fatalf("stats: %d %v", status, r)
	}
	// The rates are sampled over windows of at least a second: keep
	// sending through more than one window and they turn positive.
	b := n.dial(t, "b")
	b.Join("r")
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		a.SendText("r", fmt.Sprint("m", i))
		if i%5 == 4 {
			_, r = apiCall(t, n, "GET", "/api/stats", "s3cret", nil)
			if r.Num("messages_per_second") > 0 && r.Num("deliveries_per_second") >= r.Num("messages_per_second") {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("after 5 s of sending, stats rates are %v msgs/s and %v deliveries/s, want positive",
		r["messages_per_second"], r["deliveries_per_second"])
}
