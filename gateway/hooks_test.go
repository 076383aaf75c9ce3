package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/gateway/hook"
	"github.com/chatgw/gateway/internal/redistest"
)

// The application's hooks (docs/hooks.md) against a real node: the
// application is a real HTTP server in the test process, the clients real
// WebSocket connections.

// hookApp is the application behind the gateway: it records every hook
// call, then answers it as answer says (which may block until the call's
// context ends).
type hookApp struct {
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []hookCall
	answer func(w http.ResponseWriter, r *http.Request, body []byte)
}

type hookCall struct {
	path string
	sig  string
	body []byte
}

// newHookApp starts the application, closed when the test ends: after the
// node, whose cleanup is registered later and runs first.
func newHookApp(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body []byte)) *hookApp {
	t.Helper()
	app := &hookApp{answer: answer}
	app.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		app.mu.Lock()
		app.calls = append(app.calls, hookCall{path: r.URL.Path, sig: r.Header.Get(hook.SignatureHeader), body: body})
		app.mu.Unlock()
		if app.answer != nil {
			app.answer(w, r, body)
		}
	}))
	t.Cleanup(app.srv.Close)
	return app
}

func (app *hookApp) url() string { return app.srv.URL + "/hooks" }

// callsTo returns the calls made to URL/hooks/<event>, in order.
func (app *hookApp) callsTo(event string) []hookCall {
	app.mu.Lock()
	defer app.mu.Unlock()
	var out []hookCall
	for _, c := range app.calls {
		if c.path == "/hooks/"+event {
			out = append(out, c)
		}
	}
	return out
}

// startHookNode starts a node calling app for events.
func startHookNode(t *testing.T, app *hookApp, events string, mutate func(*gateway.Config)) *node {
	t.Helper()
	return startNode(t, func(c *gateway.Config) {
		c.HookURL, c.HookEvents = app.url(), events
		if mutate != nil {
			mutate(c)
		}
	})
}

// dialSession is node.dial that also returns the session id of welcome.
func (n *node) dialSession(t *testing.T, user string) (*client, string) {
	t.Helper()
	c := n.dialRaw(t, "user="+user)
	w := c.Next()
	if w.Str("type") != "welcome" || w.Str("user") != user || w.Str("session") == "" {
		t.Fatalf("first frame %v, want welcome for %s", w, user)
	}
	if j := c.Next(); j.Str("type") != "joined" || j.Str("room") != "@"+user {
		t.Fatalf("second frame %v, want joined @%s", j, user)
	}
	return c, w.Str("session")
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("not within %v: %s", d, what)
		}
	}
}

// decodeInto decodes a hook body; it may run on the application's
// goroutines, so it does not stop the test.
func decodeInto(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Errorf("hook body %q: %v", body, err)
	}
}

// A join asks the application first: a 403's reason reaches the client,
// which is not let in; the inbox at connect and a rejoin are not asked.
// Every body is signed with --hook-secret.
func TestHookJoinDecision(t *testing.T) {
	app := newHookApp(t, func(w http.ResponseWriter, _ *http.Request, body []byte) {
		var req hook.JoinRequest
		decodeInto(t, body, &req)
		if req.Room == "staff" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"reason":"members only"}`)
		}
	})
	n := startHookNode(t, app, "join", func(c *gateway.Config) { c.HookSecret = "s3cret" })
	a, sid := n.dialSession(t, "alice")
	a.Join("lobby")
	f := a.Request(map[string]any{"type": "join", "id": "j-staff", "room": "staff"})
	expectError(t, f, "forbidden")
	if f.Str("message") != "members only" {
		t.Errorf("deny reason %q, want the application's %q", f.Str("message"), "members only")
	}
	expectError(t, a.Request(map[string]any{"type": "send", "id": "s1", "room": "staff", "text": "hi"}), "not_joined")
	a.Join("lobby") // a rejoin: not asked again

	calls := app.callsTo("join")
	if len(calls) != 2 {
		t.Fatalf("%d join calls, want 2 (lobby, staff; not the inbox, not the rejoin): %q", len(calls), calls)
	}
	for i, room := range []string{"lobby", "staff"} {
		var req hook.JoinRequest
		decodeInto(t, calls[i].body, &req)
		if want := (hook.JoinRequest{Node: "test-node", User: "alice", Conn: sid, Room: room}); req != want {
			t.Errorf("join call %d: %+v, want %+v", i, req, want)
		}
		if !hook.Verify("s3cret", calls[i].body, calls[i].sig) {
			t.Errorf("join call %d: signature %q does not verify with the secret", i, calls[i].sig)
		}
		if hook.Verify("another", calls[i].body, calls[i].sig) {
			t.Errorf("join call %d: signature verifies with another secret", i)
		}
	}
}

// A send or DM asks the application first: a 403 refuses it with the
// reason, a 200 with a text replaces it for every member, a replacement
// left empty or too big fails it; a connection's messages are stored in
// the order it sent them even when the application answers out of order.
func TestHookPublishDecision(t *testing.T) {
	app := newHookApp(t, func(w http.ResponseWriter, _ *http.Request, body []byte) {
		var req hook.PublishRequest
		decodeInto(t, body, &req)
		text := ""
		if req.Text != nil {
			text = *req.Text
		}
		switch {
		case text == "spam":
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"reason":"no spam here"}`)
		case strings.Contains(text, "darn"):
			io.WriteString(w, `{"text":"d**n"}`)
		case text == "huge":
			fmt.Fprintf(w, `{"text":%q}`, strings.Repeat("x", 300))
		case text == "blank":
			io.WriteString(w, `{"text":""}`)
		case text == "slow":
			time.Sleep(200 * time.Millisecond) // answered after the next two
		}
	})
	n := startHookNode(t, app, "publish", func(c *gateway.Config) { c.MaxMessageBytes = 256 })
	a, b := n.dial(t, "alice"), n.dial(t, "bob")
	a.Join("lobby")
	b.Join("lobby")

	a.SendText("lobby", "hello")
	a.SendText("lobby", "darn it")
	refused := map[string]string{"spam": "forbidden", "huge": "internal", "blank": "internal"}
	for text, code := range refused {
		f := a.Request(map[string]any{"type": "send", "id": "r-" + text, "room": "lobby", "text": text})
		expectError(t, f, code)
		if text == "spam" && f.Str("message") != "no spam here" {
			t.Errorf("deny reason %q, want %q", f.Str("message"), "no spam here")
		}
	}
	// Sent back to back: the first is answered last, and stored first.
	for _, text := range []string{"slow", "after1", "after2"} {
		a.Send(map[string]any{"type": "send", "id": "o-" + text, "room": "lobby", "text": text})
	}
	acks := map[string]bool{"o-slow": true, "o-after1": true, "o-after2": true}
	for len(acks) > 0 {
		if f := a.Next(); acks[f.Str("id")] {
			if f.Str("type") != "ack" {
				t.Fatalf("%v, want an ack", f)
			}
			delete(acks, f.Str("id"))
		}
	}
	var got []string
	var last uint64
	for range 5 {
		m := b.WaitFor("message", nil)
		if m.Num("seq") <= last {
			t.Errorf("message %v after seq %d", m, last)
		}
		last = m.Num("seq")
		got = append(got, m.Str("text"))
	}
	if want := "hello d**n slow after1 after2"; strings.Join(got, " ") != want {
		t.Errorf("bob received %q, want %q (rewritten, refused ones absent, in send order)", strings.Join(got, " "), want)
	}

	// A DM: asked with its recipient, rewritten in the recipient's inbox.
	if f := a.Request(map[string]any{"type": "dm", "id": "d1", "to": "bob", "text": "darn you"}); f.Str("type") != "ack" {
		t.Fatalf("dm: %v", f)
	}
	if m := b.WaitFor("message", nil); m.Str("room") != "@bob" || m.Str("text") != "d**n" || m.Str("to") != "bob" {
		t.Errorf("bob's DM %v, want the rewritten text in @bob", m)
	}
	calls := app.callsTo("publish")
	var dm hook.PublishRequest
	decodeInto(t, calls[len(calls)-1].body, &dm)
	if dm.To != "bob" || dm.Room != "@bob" || dm.User != "alice" || dm.Text == nil || *dm.Text != "darn you" {
		t.Errorf("dm publish call %+v, want to bob in @bob from alice", dm)
	}
}

// A decision not answered within --hook-timeout: refused with unavailable
// under --hook-fail closed, allowed under open.
func TestHookTimeoutFailModes(t *testing.T) {
	// Joins of "slowroom" and every publish are answered only after the
	// timeout; other joins at once.
	app := newHookApp(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.URL.Path == "/hooks/join" && !strings.Contains(string(body), `"slowroom"`) {
			return
		}
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	for _, mode := range []string{"closed", "open"} {
		t.Run(mode, func(t *testing.T) {
			n := startHookNode(t, app, "join,publish", func(c *gateway.Config) {
				c.HookTimeout, c.HookFail = 150*time.Millisecond, mode
			})
			a := n.dial(t, "alice")
			a.Join("lobby")
			join := a.Request(map[string]any{"type": "join", "id": "j-slow", "room": "slowroom"})
			start := time.Now()
			send := a.Request(map[string]any{"type": "send", "id": "s1", "room": "lobby", "text": "hi"})
			if took := time.Since(start); took < 100*time.Millisecond {
				t.Errorf("send answered in %v: before the hook timed out", took)
			}
			if mode == "closed" {
				expectError(t, join, "unavailable")
				expectError(t, send, "unavailable")
				return
			}
			if join.Str("type") != "joined" || send.Str("type") != "ack" {
				t.Fatalf("fail open: join %v, send %v; want joined and ack", join, send)
			}
			if m := a.WaitFor("message", nil); m.Str("text") != "hi" {
				t.Errorf("fail open: message %v", m)
			}
		})
	}
}

// messageEvents is the application's side of message notifications: it
// fails (500) while failing is set, and keeps the events of the batches it
// took.
type messageEvents struct {
	failing  atomic.Bool
	failures atomic.Int64
	mu       sync.Mutex
	got      []hook.Message
}

func (me *messageEvents) answer(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.URL.Path != "/hooks/message" {
		return
	}
	if me.failing.Load() {
		me.failures.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var batch struct{ Events []hook.Message }
	if err := json.Unmarshal(body, &batch); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	me.mu.Lock()
	me.got = append(me.got, batch.Events...)
	me.mu.Unlock()
}

func (me *messageEvents) count() int {
	me.mu.Lock()
	defer me.mu.Unlock()
	return len(me.got)
}

// check fails t unless the events taken are, per room, exactly seqs 1 to
// want[room] in order, each once, with the text text(room, seq).
func (me *messageEvents) check(t *testing.T, want map[string]uint64, text func(room string, seq uint64) string) {
	t.Helper()
	me.mu.Lock()
	defer me.mu.Unlock()
	next := map[string]uint64{}
	for _, m := range me.got {
		next[m.Room]++
		if m.Seq != next[m.Room] {
			t.Fatalf("room %s: event seq %d, want %d (each once, in order): %s", m.Room, m.Seq, next[m.Room], describe(me.got))
		}
		if m.Text == nil || *m.Text != text(m.Room, m.Seq) || m.From != "alice" || m.TS <= 0 {
			t.Errorf("event %+v, want text %q from alice", m, text(m.Room, m.Seq))
		}
	}
	for room, n := range want {
		if next[room] != n {
			t.Errorf("room %s: %d events, want %d", room, next[room], n)
		}
	}
	if len(next) != len(want) {
		t.Errorf("events of rooms %v, want %v", next, want)
	}
}

// describe lists events as room/seq:text.
func describe(msgs []hook.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		text := "-"
		if m.Text != nil {
			text = *m.Text
		}
		fmt.Fprintf(&b, "%s/%d:%s ", m.Room, m.Seq, text)
	}
	return b.String()
}

// Message notifications while the application fails for a while: none is
// lost, none repeated, in seq order per room, DMs included (one per inbox
// they are stored in), and those stored after the recovery too.
func TestHookMessagesThroughOutage(t *testing.T) {
	if clusterMode(t) {
		t.Skip("message notifications are refused with --redis-url (each node would notify every message)")
	}
	me := &messageEvents{}
	me.failing.Store(true)
	app := newHookApp(t, me.answer)
	n := startHookNode(t, app, "", nil) // the default events: message
	a, b := n.dial(t, "alice"), n.dial(t, "bob")
	a.Join("lobby")
	a.Join("side")
	for i := 1; i <= 5; i++ {
		a.SendText("lobby", fmt.Sprint("lobby-", i))
	}
	for i := 1; i <= 3; i++ {
		a.SendText("side", fmt.Sprint("side-", i))
	}
	if f := a.Request(map[string]any{"type": "dm", "id": "d1", "to": "bob", "text": "psst"}); f.Str("type") != "ack" {
		t.Fatalf("dm: %v", f)
	}
	b.WaitFor("message", nil)
	eventually(t, 5*time.Second, "three failed deliveries", func() bool { return me.failures.Load() >= 3 })
	if me.count() != 0 {
		t.Fatalf("events taken while the application failed")
	}

	me.failing.Store(false)
	eventually(t, 10*time.Second, "10 events after the recovery", func() bool { return me.count() >= 10 })
	for i := 6; i <= 7; i++ {
		a.SendText("lobby", fmt.Sprint("lobby-", i))
	}
	eventually(t, 5*time.Second, "12 events", func() bool { return me.count() >= 12 })
	time.Sleep(300 * time.Millisecond) // room for a repeat to show
	me.check(t, map[string]uint64{"lobby": 7, "side": 3, "@bob": 1, "@alice": 1}, func(room string, seq uint64) string {
		if room[0] == '@' {
			return "psst"
		}
		return fmt.Sprint(room, "-", seq)
	})
	me.mu.Lock()
	defer me.mu.Unlock()
	for _, m := range me.got {
		if m.Room[0] == '@' && m.To != "bob" {
			t.Errorf("DM event %+v without to bob", m)
		}
	}
}

// With the durable store, the cursor is on disk: a node stopped while the
// application is down notifies, once started again, what it had not
// delivered, and not what it had.
func TestHookMessagesAcrossRestart(t *testing.T) {
	if clusterMode(t) {
		t.Skip("message notifications are refused with --redis-url (each node would notify every message)")
	}
	me := &messageEvents{}
	app := newHookApp(t, me.answer)
	dir := t.TempDir()
	durable := func(c *gateway.Config) { c.DataDir = dir }
	n := startHookNode(t, app, "message", durable)
	a := n.dial(t, "alice")
	a.Join("lobby")
	for i := 1; i <= 3; i++ {
		a.SendText("lobby", fmt.Sprint("m", i))
	}
	eventually(t, 5*time.Second, "the first 3 events", func() bool { return me.count() == 3 })

	me.failing.Store(true)
	for i := 4; i <= 7; i++ {
		a.SendText("lobby", fmt.Sprint("m", i))
	}
	// A failed delivery of 4-7 comes after the cursor of 1-3 was saved:
	// the sender saves it before it reads the next batch.
	eventually(t, 5*time.Second, "a failed delivery", func() bool { return me.failures.Load() >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if me.count() != 3 {
		t.Fatalf("%d events before the restart, want 3", me.count())
	}

	me.failing.Store(false)
	startHookNode(t, app, "message", durable)
	eventually(t, 10*time.Second, "7 events after the restart", func() bool { return me.count() >= 7 })
	time.Sleep(300 * time.Millisecond) // room for a repeat to show
	me.check(t, map[string]uint64{"lobby": 7}, func(_ string, seq uint64) string { return fmt.Sprint("m", seq) })
}

// Presence and disconnect notifications: a user's first connection in a
// room and its last one leaving (not its inbox), and a connection's end
// with its close code.
func TestHookPresenceAndDisconnect(t *testing.T) {
	var mu sync.Mutex
	var presence []hook.PresenceEvent
	var disconnects []hook.DisconnectEvent
	app := newHookApp(t, func(_ http.ResponseWriter, r *http.Request, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/hooks/presence":
			var b struct{ Events []hook.PresenceEvent }
			decodeInto(t, body, &b)
			presence = append(presence, b.Events...)
		case "/hooks/disconnect":
			var b struct{ Events []hook.DisconnectEvent }
			decodeInto(t, body, &b)
			disconnects = append(disconnects, b.Events...)
		}
	})
	n := startHookNode(t, app, "presence,disconnect", nil)
	a, sid := n.dialSession(t, "alice")
	b := n.dial(t, "bob")
	a.Join("lobby")
	b.Join("lobby")
	a.WaitFor("presence", nil) // bob's join reached alice: its event was queued before
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := a.WS.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	a.UntilClose()
	eventually(t, 5*time.Second, "3 presence events and a disconnect", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(presence) >= 3 && len(disconnects) >= 1
	})
	time.Sleep(200 * time.Millisecond) // room for an inbox event to show
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, p := range presence {
		if p.Node != "test-node" || p.TS <= 0 {
			t.Errorf("presence event %+v", p)
		}
		got = append(got, fmt.Sprintf("%s %s %v", p.Room, p.User, p.Online))
	}
	if want := "lobby alice true,lobby bob true,lobby alice false"; strings.Join(got, ",") != want {
		t.Errorf("presence events %q, want %q", strings.Join(got, ","), want)
	}
	if len(disconnects) != 1 {
		t.Fatalf("disconnect events %+v, want alice's only", disconnects)
	}
	if d := disconnects[0]; d.User != "alice" || d.Conn != sid || d.Code != 1000 || d.Node != "test-node" || d.TS <= 0 {
		t.Errorf("disconnect event %+v, want alice's session %s with code 1000", d, sid)
	}
}

// rawUpgrade sends a WebSocket upgrade for query over raw TCP and returns
// the HTTP status and, for a refusal, the body.
func rawUpgrade(t *testing.T, n *node, query string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", n.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /ws?" + query + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("upgrade %s: %v", query, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, ""
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The connect decision is the handshake's answer: a 403 with the
// application's reason, or a welcome as the user and with the rooms the
// application named; a failed call refuses with 503 (fail closed).
func TestHookConnectDecision(t *testing.T) {
	app := newHookApp(t, func(w http.ResponseWriter, _ *http.Request, body []byte) {
		var req hook.ConnectRequest
		decodeInto(t, body, &req)
		switch req.User {
		case "mallory":
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"reason":"banned for spam"}`)
		case "guest":
			io.WriteString(w, `{"user":"carol","rooms":["public-*"]}`)
		case "slow":
			time.Sleep(2 * time.Second)
		}
	})
	n := startHookNode(t, app, "connect", func(c *gateway.Config) { c.HookTimeout = 500 * time.Millisecond })

	if status, body := rawUpgrade(t, n, "user=mallory"); status != http.StatusForbidden || !strings.Contains(body, "banned for spam") {
		t.Errorf("mallory: %d %q, want 403 with the application's reason", status, body)
	}
	if status, _ := rawUpgrade(t, n, "user=slow"); status != http.StatusServiceUnavailable {
		t.Errorf("an unanswered decision: %d, want 503 (--hook-fail closed)", status)
	}

	c := n.dialRaw(t, "user=guest&theme=dark")
	if w := c.Next(); w.Str("type") != "welcome" || w.Str("user") != "carol" {
		t.Fatalf("guest: %v, want welcome as carol (the application's user)", w)
	}
	if j := c.Next(); j.Str("room") != "@carol" {
		t.Fatalf("guest: %v, want carol's inbox joined", j)
	}
	c.Join("public-1")
	expectError(t, c.Request(map[string]any{"type": "join", "id": "j2", "room": "private"}), "forbidden")

	a := n.dial(t, "alice") // {} or no answer body: as authenticated
	a.Join("private")

	var seen []hook.ConnectRequest
	for _, call := range app.callsTo("connect") {
		var req hook.ConnectRequest
		decodeInto(t, call.body, &req)
		seen = append(seen, req)
	}
	if len(seen) != 4 {
		t.Fatalf("%d connect calls, want 4: %+v", len(seen), seen)
	}
	if g := seen[2]; g.User != "guest" || g.Node != "test-node" || g.Query["theme"] != "dark" || g.RemoteAddr == "" {
		t.Errorf("connect body %+v: want user guest, the node, the query and the address", g)
	}
}

// Handshakes waiting for the connect decision are bounded: past the bound
// a handshake is refused at once with 503 instead of holding another of
// nbio's handler goroutines.
func TestHookConnectDecisionsBounded(t *testing.T) {
	release := make(chan struct{})
	var waiting atomic.Int32
	app := newHookApp(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		waiting.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	n := startHookNode(t, app, "connect", func(c *gateway.Config) { c.HookTimeout = 20 * time.Second })
	var wg sync.WaitGroup
	statuses := make(chan int, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _ := rawUpgrade(t, n, fmt.Sprintf("user=u%d", i))
			statuses <- s
		}()
	}
	eventually(t, 10*time.Second, "64 connect decisions in flight", func() bool { return waiting.Load() == 64 })
	start := time.Now()
	if status, body := rawUpgrade(t, n, "user=one-too-many"); status != http.StatusServiceUnavailable || time.Since(start) > 5*time.Second {
		t.Errorf("the 65th waiting handshake: %d %q after %v, want 503 at once", status, body, time.Since(start))
	}
	close(release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusSwitchingProtocols {
			t.Errorf("a handshake let through by the application got %d", s)
		}
	}
}

// Cluster mode: three nodes on one Redis, messages sent through each of
// them; the application hears every message exactly once (one node holds
// the notifier lease), in seq order per room.
func TestHookMessagesOncePerCluster(t *testing.T) {
	onePass(t)
	var mu sync.Mutex
	got := map[string][]uint64{}
	app := newHookApp(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		var batch struct{ Events []hook.Message }
		decodeInto(t, body, &batch)
		mu.Lock()
		for _, m := range batch.Events {
			got[m.Room] = append(got[m.Room], m.Seq)
		}
		mu.Unlock()
	})
	url := redistest.Start(t).URL()
	var nodes []*node
	for i := 0; i < 3; i++ {
		nodes = append(nodes, startNode(t, func(c *gateway.Config) {
			c.RedisURL, c.NodeID = url, fmt.Sprintf("node-%d", i)
			c.HookURL, c.HookEvents = app.url(), "message"
		}))
	}
	rooms := []string{"north", "south"}
	const perNode = 10
	for i, n := range nodes {
		c := n.dial(t, fmt.Sprintf("u%d", i))
		for _, room := range rooms {
			c.Join(room)
			for k := 0; k < perNode; k++ {
				c.SendText(room, fmt.Sprintf("%d-%d", i, k))
			}
		}
	}
	want := len(nodes) * perNode
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range got {
			n += len(s)
		}
		return n
	}
	eventually(t, 15*time.Second, "every message notified", func() bool { return total() >= want*len(rooms) })
	time.Sleep(2 * time.Second) // room for duplicates from a second notifier
	mu.Lock()
	defer mu.Unlock()
	for _, room := range rooms {
		seqs := got[room]
		if len(seqs) != want {
			t.Errorf("room %s: %d events, want %d, each once: %v", room, len(seqs), want, seqs)
			continue
		}
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Errorf("room %s: events %v, want seqs 1..%d in order", room, seqs, want)
				break
			}
		}
	}
}
