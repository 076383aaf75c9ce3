package hook

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

var decisions = EventsOf(EventConnect, EventJoin, EventPublish)

func text(s string) *string { return &s }

// bodies are a request body per decision event, and the fields the
// receiver must find in it.
var bodies = map[Event]struct {
	body any
	want map[string]any
}{
	EventConnect: {ConnectRequest{Node: "n1", User: "alice", RemoteAddr: "10.0.0.1:5000", Query: map[string]string{"room": "x"}},
		map[string]any{"node": "n1", "user": "alice", "remote_addr": "10.0.0.1:5000", "query": map[string]any{"room": "x"}}},
	EventJoin: {JoinRequest{Node: "n1", User: "alice", Conn: "c1", Room: "general"},
		map[string]any{"node": "n1", "user": "alice", "conn": "c1", "room": "general"}},
	EventPublish: {PublishRequest{Node: "n1", User: "alice", Conn: "c1", Room: "general", Text: text("hi")},
		map[string]any{"node": "n1", "user": "alice", "conn": "c1", "room": "general", "text": "hi"}},
}

// TestDecideAllowDeny: for each decision event, 200 allows, 403 refuses
// with the answer's reason or the default one, and the request is POST
// URL/<event> with a JSON body of the documented fields.
func TestDecideAllowDeny(t *testing.T) {
	for _, e := range []Event{EventConnect, EventJoin, EventPublish} {
		t.Run(e.String(), func(t *testing.T) {
			for _, tc := range []struct {
				code    int
				answer  string
				verdict Verdict
				reason  string
			}{
				{200, "", Allow, ""},
				{403, `{"reason":"banned here"}`, Deny, "banned here"},
				{403, ``, Deny, DefaultDenyReason},
				{403, `not json`, Deny, DefaultDenyReason},
			} {
				var method, ctype string
				rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
					method, ctype = r.Method, r.Header.Get("Content-Type")
					status(tc.code, tc.answer)(w, r, body)
				})
				h := start(t, Config{URL: rc.srv.URL + "/hooks", Events: decisions}, nil, nil)
				d := decide(t, h, e, bodies[e].body)
				if d.Verdict != tc.verdict || d.Reason != tc.reason || d.Err != nil {
					t.Errorf("HTTP %d %q: got %v %q %v, want %v %q", tc.code, tc.answer, d.Verdict, d.Reason, d.Err, tc.verdict, tc.reason)
				}
				reqs := rc.requests()
				if len(reqs) != 1 || reqs[0].path != "/hooks/"+e.String() || method != "POST" || ctype != "application/json" {
					t.Fatalf("requests %+v, method %s, content type %s", reqs, method, ctype)
				}
				var got map[string]any
				if err := json.Unmarshal(reqs[0].body, &got); err != nil {
					t.Fatal(err)
				}
				want, _ := json.Marshal(bodies[e].want)
				gotJSON, _ := json.Marshal(got)
				if string(gotJSON) != string(want) {
					t.Errorf("body %s, want %s", gotJSON, want)
				}
			}
		})
	}
}

// TestPublishRewrite: a 200 answer replaces the text, the data or both;
// absent or null fields and an empty answer change nothing; an answer that
// is not the documented object is a failure.
func TestPublishRewrite(t *testing.T) {
	for _, tc := range []struct {
		answer  string
		verdict Verdict
		text    *string
		data    string
	}{
		{`{"text":"***"}`, Allow, text("***"), ""},
		{`{"data":{"kind":"img","w":1}}`, Allow, nil, `{"kind":"img","w":1}`},
		{`{"text":"a","data":[1,2]}`, Allow, text("a"), `[1,2]`},
		{`{"text":""}`, Allow, text(""), ""},
		{``, Allow, nil, ""},
		{" \n", Allow, nil, ""},
		{`{}`, Allow, nil, ""},
		{`{"text":null,"data":null}`, Allow, nil, ""},
		{`{"text":5}`, Unavailable, nil, ""},
		{`<html>`, Unavailable, nil, ""},
	} {
		rc := newReceiver(t, status(200, tc.answer))
		h := start(t, Config{URL: rc.srv.URL, Events: decisions}, nil, nil)
		d := decide(t, h, EventPublish, bodies[EventPublish].body)
		if d.Verdict != tc.verdict || (d.Text == nil) != (tc.text == nil) || (d.Text != nil && *d.Text != *tc.text) || string(d.Data) != tc.data {
			t.Errorf("answer %q: got %v text %v data %s err %v", tc.answer, d.Verdict, d.Text, d.Data, d.Err)
		}
		if tc.verdict == Unavailable && d.Err == nil {
			t.Errorf("answer %q: no Err", tc.answer)
		}
	}
}

// TestConnectIdentity: a connect's 200 answer sets the user and the room
// globs; rooms absent (nil) differs from rooms empty.
func TestConnectIdentity(t *testing.T) {
	for _, tc := range []struct {
		answer string
		user   string
		rooms  []string
	}{
		{`{"user":"bob","rooms":["team-*","general"]}`, "bob", []string{"team-*", "general"}},
		{`{"rooms":[]}`, "", []string{}},
		{`{}`, "", nil},
	} {
		rc := newReceiver(t, status(200, tc.answer))
		h := start(t, Config{URL: rc.srv.URL, Events: decisions}, nil, nil)
		d := decide(t, h, EventConnect, bodies[EventConnect].body)
		if d.Verdict != Allow || d.User != tc.user || (d.Rooms == nil) != (tc.rooms == nil) || strings.Join(d.Rooms, ",") != strings.Join(tc.rooms, ",") {
			t.Errorf("answer %s: got %+v", tc.answer, d)
		}
	}
}

// TestDecideFailures: a timeout, a refused connection, another status, a
// redirect and an oversize answer all take the fail mode: Unavailable when
// closed, Allow (content unchanged) when open, with Err saying why.
func TestDecideFailures(t *testing.T) {
	big := `{"text":"` + strings.Repeat("x", MaxAnswerBytes) + `"}`
	cases := []struct {
		name   string
		answer func(http.ResponseWriter, *http.Request, []byte)
		url    string
		err    string
	}{
		{"timeout", func(w http.ResponseWriter, r *http.Request, _ []byte) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, "", "timeout after 1s"},
		{"refused", nil, "refused", "connection refused"},
		{"500", status(500, `{"text":"x"}`), "", "HTTP 500"},
		{"204", status(204, ""), "", "HTTP 204"},
		{"redirect", func(w http.ResponseWriter, r *http.Request, _ []byte) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, "", "HTTP 302"},
		{"oversize", status(200, big), "", "over 65536 bytes"},
	}
	for _, tc := range cases {
		for _, open := range []bool{false, true} {
			url := tc.url
			if url == "refused" {
				url = refusedURL(t) // now: a port freed earlier may be some later server's
			}
			if tc.answer != nil {
				url = newReceiver(t, tc.answer).srv.URL
			}
			reg := prometheus.NewRegistry()
			// 1 s: long enough that no other case times out on a loaded
			// machine; the timeout case waits it out, twice.
			h := start(t, Config{URL: url, Events: decisions, Timeout: time.Second, FailOpen: open}, nil, reg)
			d := decide(t, h, EventPublish, bodies[EventPublish].body)
			want := Unavailable
			if open {
				want = Allow
			}
			if d.Verdict != want || d.Text != nil || d.Data != nil {
				t.Errorf("%s, open %v: got %+v, want %v unchanged", tc.name, open, d, want)
			}
			if d.Err == nil || !strings.Contains(d.Err.Error(), tc.err) {
				t.Errorf("%s: Err %v, want it to say %q", tc.name, d.Err, tc.err)
			}
			if metric(t, reg, "gateway_hook_failures_total", "event", "publish") != 1 ||
				metric(t, reg, "gateway_hook_calls_total", "event", "publish", "outcome", "error") != 1 {
				t.Errorf("%s: failure not counted", tc.name)
			}
		}
	}
}

// TestDenyStandsFailOpen: a 403 whose answer is too large to read is still
// a refusal, even with FailOpen: a failure there would let it through.
func TestDenyStandsFailOpen(t *testing.T) {
	rc := newReceiver(t, status(403, strings.Repeat(" ", 2*MaxAnswerBytes)))
	h := start(t, Config{URL: rc.srv.URL, Events: decisions, FailOpen: true}, nil, nil)
	if d := decide(t, h, EventJoin, bodies[EventJoin].body); d.Verdict != Deny || d.Reason != DefaultDenyReason {
		t.Errorf("got %+v", d)
	}
}

// TestSignature: with a secret every call is signed, Verify accepts the
// signature, and rejects a tampered body, a wrong secret or a malformed
// header; without a secret there is no header.
func TestSignature(t *testing.T) {
	rc := newReceiver(t, status(200, ""))
	h := start(t, Config{URL: rc.srv.URL, Events: decisions, Secret: "s3cret"}, nil, nil)
	decide(t, h, EventJoin, bodies[EventJoin].body)
	req := rc.requests()[0]
	sig := req.header.Get(SignatureHeader)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("signature %q", sig)
	}
	if !Verify("s3cret", req.body, sig) {
		t.Error("Verify rejects the gateway's signature")
	}
	tampered := append([]byte(nil), req.body...)
	tampered[len(tampered)-2] ^= 1
	for name, ok := range map[string]bool{
		"tampered body": Verify("s3cret", tampered, sig),
		"wrong secret":  Verify("secret", req.body, sig),
		"empty secret":  Verify("", req.body, sig),
		"no prefix":     Verify("s3cret", req.body, strings.TrimPrefix(sig, "sha256=")),
		"short":         Verify("s3cret", req.body, sig[:len(sig)-2]),
		"not hex":       Verify("s3cret", req.body, sig[:len(sig)-1]+"z"),
	} {
		if ok {
			t.Errorf("Verify accepts a %s", name)
		}
	}

	rc2 := newReceiver(t, status(200, ""))
	h2 := start(t, Config{URL: rc2.srv.URL, Events: decisions}, nil, nil)
	decide(t, h2, EventJoin, bodies[EventJoin].body)
	if v := rc2.requests()[0].header.Get(SignatureHeader); v != "" {
		t.Errorf("unsigned hooks sent %s: %q", SignatureHeader, v)
	}
}

// TestQueueFull: with every worker busy and the queue full, a decision
// gets the fail mode at once, before Decide returns, and is counted; the
// queued ones are still made.
func TestQueueFull(t *testing.T) {
	release := make(chan struct{})
	var seen atomic.Int32
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		seen.Add(1)
		<-release
	})
	defer close(release) // before the receiver's cleanup, which waits for its handlers
	reg := prometheus.NewRegistry()
	h := start(t, Config{URL: rc.srv.URL, Events: decisions, Workers: 1, DecideQueue: 1}, nil, reg)
	results := make(chan Decision, 3)
	h.Decide(EventJoin, bodies[EventJoin].body, func(d Decision) { results <- d })
	eventually(t, 5*time.Second, "the first call", func() bool { return seen.Load() == 1 })
	h.Decide(EventJoin, bodies[EventJoin].body, func(d Decision) { results <- d }) // queued
	full := make(chan Decision, 1)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		h.Decide(EventJoin, bodies[EventJoin].body, func(d Decision) {
			select {
			case <-returned:
				d.Reason = "called after Decide returned"
			default:
			}
			full <- d
		})
	}()
	select {
	case d := <-full:
		if d.Verdict != Unavailable || !errors.Is(d.Err, ErrQueueFull) || d.Reason != "" {
			t.Fatalf("third decision: %+v, want Unavailable/ErrQueueFull before Decide returns", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Decide blocks when the queue is full")
	}
	if metric(t, reg, "gateway_hook_calls_total", "event", "join", "outcome", "queue_full") != 1 ||
		metric(t, reg, "gateway_hook_dropped_total", "event", "join") != 1 {
		t.Error("queue full not counted")
	}
	release <- struct{}{}
	release <- struct{}{}
	for range 2 {
		if d := <-results; d.Verdict != Allow {
			t.Errorf("queued decision: %+v", d)
		}
	}
}

// TestCloseFailsFast: Close ends in-flight and queued decisions at once
// with the fail mode, each done called exactly once, and Decide after
// Close answers at once.
func TestCloseFailsFast(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { <-r.Context().Done() })
	h, err := New(Config{URL: rc.srv.URL, Events: decisions, Workers: 2, Timeout: time.Minute}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	var calls [n]atomic.Int32
	var errs [n]atomic.Value
	for i := range n {
		h.Decide(EventPublish, bodies[EventPublish].body, func(d Decision) {
			calls[i].Add(1)
			errs[i].Store(d)
		})
	}
	eventually(t, 5*time.Second, "calls in flight", func() bool { return len(rc.requests()) == 2 })
	began := time.Now()
	h.Close()
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	for i := range n {
		d, _ := errs[i].Load().(Decision)
		if calls[i].Load() != 1 || d.Verdict != Unavailable || !errors.Is(d.Err, ErrClosed) {
			t.Errorf("decision %d: %d calls, %+v", i, calls[i].Load(), d)
		}
	}
	d := decide(t, h, EventJoin, bodies[EventJoin].body)
	if d.Verdict != Unavailable || !errors.Is(d.Err, ErrClosed) {
		t.Errorf("after Close: %+v", d)
	}
	h.Close() // twice is fine
}

// TestDecideOff: a nil *Hooks, or an event not enabled, allows at once
// without a call.
func TestDecideOff(t *testing.T) {
	var h *Hooks
	d := decide(t, h, EventConnect, nil)
	if d.Verdict != Allow || h.Enabled(EventConnect) {
		t.Errorf("nil hooks: %+v", d)
	}
	h.Stored("r", 1)
	h.Notify(EventPresence, PresenceEvent{})
	h.Close()

	rc := newReceiver(t, status(403, ""))
	h = start(t, Config{URL: rc.srv.URL, Events: EventsOf(EventJoin, EventMessage)}, newMemSource(), nil)
	if d := decide(t, h, EventPublish, bodies[EventPublish].body); d.Verdict != Allow || len(rc.requests()) != 0 {
		t.Errorf("publish not enabled: %+v, %d calls", d, len(rc.requests()))
	}
	if d := decide(t, h, EventMessage, nil); d.Verdict != Allow || d.Err == nil {
		t.Errorf("message is not a decision: %+v", d)
	}
}

// TestCloseLeavesNoGoroutines: after Close, nothing of the hooks runs, not
// even the keep-alive connection to an application that keeps it open.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	rc := newReceiver(t, status(200, ""))
	before := goleak.IgnoreCurrent() // the receiver's own
	h, err := New(Config{URL: rc.srv.URL, Events: EventsOf(EventJoin, EventPresence)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	decide(t, h, EventJoin, bodies[EventJoin].body)
	h.Close()
	goleak.VerifyNone(t, before)
}
