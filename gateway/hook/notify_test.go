package hook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// presenceUsers returns the users of a presence batch, in order.
func presenceUsers(t *testing.T, body []byte) []string {
	t.Helper()
	var users []string
	for _, raw := range decodeBatch(t, body).Events {
		var ev PresenceEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		users = append(users, ev.User)
	}
	return users
}

func user(i int) string { return string(rune('A'+i/26)) + string(rune('a'+i%26)) }

// TestPresenceDisconnectBatches: presence and disconnect events go to
// their own endpoints, in batches of at most BatchMax, each event once and
// in the order Notify was called.
func TestPresenceDisconnectBatches(t *testing.T) {
	rc := newReceiver(t, status(200, ""))
	h := start(t, Config{URL: rc.srv.URL, Events: EventsOf(EventPresence, EventDisconnect),
		BatchMax: 10, BatchWait: 20 * time.Millisecond}, nil, nil)
	const np, nd = 45, 23
	for i := range max(np, nd) {
		if i < np {
			h.Notify(EventPresence, PresenceEvent{Node: "n1", Room: "general", User: user(i), Online: i%2 == 0, TS: int64(i)})
		}
		if i < nd {
			h.Notify(EventDisconnect, DisconnectEvent{Node: "n1", User: user(i), Conn: "c", Code: 1000, TS: int64(i)})
		}
		h.Notify(EventMessage, "ignored") // not through Notify
	}
	got := map[string][]string{}
	eventually(t, 5*time.Second, "every event", func() bool {
		got = map[string][]string{}
		for _, r := range rc.requests() {
			users := presenceUsers(t, r.body) // DisconnectEvent has "user" too
			if len(users) > 10 || len(users) == 0 {
				t.Fatalf("%s batch of %d events", r.path, len(users))
			}
			got[r.path] = append(got[r.path], users...)
		}
		return len(got["/presence"]) >= np && len(got["/disconnect"]) >= nd
	})
	if len(got) != 2 {
		t.Errorf("paths %v", got)
	}
	for path, n := range map[string]int{"/presence": np, "/disconnect": nd} {
		if len(got[path]) != n {
			t.Errorf("%s: %d events, want %d", path, len(got[path]), n)
		}
		for i, u := range got[path] {
			if u != user(i) {
				t.Fatalf("%s: event %d is %s, want %s (order)", path, i, u, user(i))
			}
		}
	}
	var ev map[string]any
	json.Unmarshal(decodeBatch(t, rc.requests()[0].body).Events[0], &ev)
	if _, ok := ev["online"]; !ok && rc.requests()[0].path == "/presence" {
		t.Errorf("presence event %v", ev)
	}
}

// TestBatchWaitFlushesLoneEvent: a lone event is sent BatchWait after it
// was queued: not before (it waited for company), and not never.
func TestBatchWaitFlushesLoneEvent(t *testing.T) {
	arrived := make(chan time.Time, 4)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { arrived <- time.Now() })
	const wait = 150 * time.Millisecond
	src := newMemSource()
	h := start(t, Config{URL: rc.srv.URL, Events: EventsOf(EventPresence, EventMessage), BatchWait: wait}, src, nil)
	// Rooms Pending lists are sent without waiting (a backlog): store
	// once the sender has resumed, as the gateway's messages come.
	eventually(t, 5*time.Second, "resume", func() bool { src.mu.Lock(); defer src.mu.Unlock(); return src.pendingCalls > 0 })

	began := time.Now()
	h.Notify(EventPresence, PresenceEvent{User: "a"})
	h.Stored("r", src.add("r", "lone"))
	for range 2 {
		select {
		case at := <-arrived:
			if d := at.Sub(began); d < wait*9/10 {
				t.Errorf("sent after %v, before BatchWait %v", d, wait)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("lone event never sent")
		}
	}
	if n := len(rc.requests()); n != 2 {
		t.Errorf("%d requests", n)
	}
}

// TestNotifyDropsOldest: while the endpoint is down a full queue drops its
// oldest events and counts them; the batch being retried is kept and sent
// first once the endpoint is back, then the newest events.
func TestNotifyDropsOldest(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	var accepted [][]byte
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, body []byte) {
		if down.Load() {
			w.WriteHeader(503)
			return
		}
		mu.Lock()
		accepted = append(accepted, body)
		mu.Unlock()
	})
	reg := prometheus.NewRegistry()
	h := start(t, Config{URL: rc.srv.URL, Events: EventsOf(EventPresence), NotifyQueue: 5,
		BatchWait: time.Millisecond, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}, nil, reg)
	h.Notify(EventPresence, PresenceEvent{User: user(0)})
	eventually(t, 5*time.Second, "a failed attempt", func() bool { return len(rc.requests()) > 0 })
	for i := 1; i < 20; i++ {
		h.Notify(EventPresence, PresenceEvent{User: user(i)})
	}
	if q := metric(t, reg, "gateway_hook_queue"); q != 6 {
		t.Errorf("gateway_hook_queue %v, want 6 (5 queued, 1 retried)", q)
	}
	down.Store(false)
	eventually(t, 5*time.Second, "delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) == 2
	})
	mu.Lock()
	var batches [][]string
	for _, b := range accepted {
		batches = append(batches, presenceUsers(t, b))
	}
	mu.Unlock()
	got := fmt.Sprint(batches)
	if want := fmt.Sprint([][]string{{user(0)}, {user(15), user(16), user(17), user(18), user(19)}}); got != want {
		t.Errorf("delivered %s, want %s", got, want)
	}
	if d := metric(t, reg, "gateway_hook_dropped_total", "event", "presence"); d != 14 {
		t.Errorf("dropped %v, want 14", d)
	}
	if metric(t, reg, "gateway_hook_failures_total", "event", "presence") < 1 {
		t.Error("failures not counted")
	}
	eventually(t, time.Second, "an empty queue", func() bool { return metric(t, reg, "gateway_hook_queue") == 0 })
}

// TestCloseFlushes: Close delivers what the notifiers hold, within
// FlushTimeout, instead of waiting out BatchWait.
func TestCloseFlushes(t *testing.T) {
	rc := newReceiver(t, status(200, ""))
	src := newMemSource()
	h, err := New(Config{URL: rc.srv.URL, Events: EventsOf(EventPresence, EventMessage), BatchWait: time.Hour, BatchMax: 2}, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		h.Notify(EventPresence, PresenceEvent{User: user(i)})
		h.Stored("r", src.add("r", "m"))
	}
	h.Close()
	var users []string
	var msgs []Message
	for _, r := range rc.requests() {
		switch r.path {
		case "/presence":
			users = append(users, presenceUsers(t, r.body)...)
		case "/message":
			msgs = append(msgs, messages(t, r.body)...)
		}
	}
	if len(users) != 3 || len(msgs) != 3 || src.cursor("r") != 3 {
		t.Errorf("flushed %v and %d messages, cursor %d", users, len(msgs), src.cursor("r"))
	}
}

// TestCloseBounded: an endpoint that hangs holds Close up to FlushTimeout,
// not Timeout.
func TestCloseBounded(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { <-r.Context().Done() })
	h, err := New(Config{URL: rc.srv.URL, Events: EventsOf(EventDisconnect), BatchWait: time.Millisecond,
		Timeout: time.Minute, FlushTimeout: 100 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Notify(EventDisconnect, DisconnectEvent{User: "a"})
	eventually(t, 5*time.Second, "the call", func() bool { return len(rc.requests()) == 1 })
	began := time.Now()
	h.Close()
	if d := time.Since(began); d > 2*time.Second || d < 90*time.Millisecond {
		t.Errorf("Close took %v, want about FlushTimeout", d)
	}
}
