// The conformance suite: what every backend.Backend must do, checked the
// same way against each implementation, Memory (a node alone) and
// cluster.Node (Redis, a real redis-server from internal/redistest).
// Every backend must pass it; a new one gets an entry in backends, and a
// case it cannot meet by nature (a node alone has no other node, no
// scripts, no expiring presence) is skipped with the reason, not weakened.
// Deliveries are observed as members see them: through the node's hub,
// into recording sockets, as WebSocket frames.
package backend_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/backend"
	"github.com/chatgw/gateway/gateway/cluster"
	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hub"
	"github.com/chatgw/gateway/internal/redistest"
)

// wait bounds every wait for an answer or a delivery.
const wait = 5 * time.Second

// node is one backend with its hub; close is b.Close, once (the test's
// cleanup closes too).
type node struct {
	b     backend.Backend
	h     *hub.Hub
	close func() error
}

// world is a backend under test and what the suite may do around it.
type world struct {
	node
	alone bool // PresenceJoin/Leave count no entries (a node alone)
	// peer starts another node on the same store (nil: there is none).
	peer func(t *testing.T, id string, refresh time.Duration) node
	// flushScripts makes the store forget its scripts (nil: it has none).
	flushScripts func(t *testing.T)
}

func newNode(t *testing.T, h *hub.Hub, b backend.Backend) node {
	var once sync.Once
	var err error
	nd := node{b: b, h: h, close: func() error { once.Do(func() { err = b.Close() }); return err }}
	t.Cleanup(func() { _ = nd.close() }) // before the hub's Stop, registered earlier
	return nd
}

func newHub(t *testing.T) *hub.Hub {
	h := hub.New(hub.Config{Workers: 2})
	t.Cleanup(h.Stop)
	return h
}

var backends = []struct {
	name  string
	start func(t *testing.T) world
}{
	{"memory", func(t *testing.T) world {
		h := newHub(t)
		return world{node: newNode(t, h, backend.NewMemory(h, history.NewMemoryWith(history.MemoryConfig{Size: 100}))), alone: true}
	}},
	{"redis", func(t *testing.T) world {
		srv := redistest.Start(t)
		client := func(t *testing.T) *redis.Client {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			t.Cleanup(func() { _ = c.Close() })
			return c
		}
		start := func(t *testing.T, id string, refresh time.Duration) node {
			h := newHub(t)
			n := cluster.New(cluster.Config{Client: client(t), NodeID: id, Size: 100, PresenceRefresh: refresh,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Hub: h}, nil)
			nd := newNode(t, h, n)
			for deadline := time.Now().Add(wait); !n.Ready(); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("node %s never ready", id)
				}
			}
			return nd
		}
		flush := func(t *testing.T) {
			if err := client(t).ScriptFlush(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		}
		return world{node: start(t, "n1", time.Hour), peer: start, flushScripts: flush}
	}},
}

// answer starts a call and waits for the value its callback gives.
func answer[T any](t *testing.T, what string, call func(done func(T))) T {
	t.Helper()
	ch := make(chan T, 2)
	call(func(v T) { ch <- v })
	select {
	case v := <-ch:
		select {
		case again := <-ch:
			t.Fatalf("%s answered twice: %v, then %v", what, v, again)
		default:
		}
		return v
	case <-time.After(wait):
		t.Fatalf("no answer to %s within %v", what, wait)
		panic("unreachable")
	}
}

type ackErr struct {
	backend.Ack
	err  error
	text string // what was published
}

// collect waits for n answers on ch.
func collect(t *testing.T, ch <-chan ackErr, n int) []ackErr {
	t.Helper()
	out := make([]ackErr, 0, n)
	for len(out) < n {
		select {
		case a := <-ch:
			out = append(out, a)
		case <-time.After(wait):
			t.Fatalf("%d of %d publishes answered", len(out), n)
		}
	}
	return out
}

func encoder(room, user, text string) history.Encoder {
	return func(seq uint64, ts int64) []byte {
		return codec.OwnedFrame(func(b []byte) []byte {
			return codec.AppendMessage(b, &codec.Message{Room: room, Seq: seq, TS: ts, From: user, Text: &text})
		})
	}
}

func publishAsync(b backend.Backend, room, user, key, text string, done func(ackErr)) {
	b.Publish(room, user, key, encoder(room, user, text), func(a backend.Ack, err error) { done(ackErr{a, err, text}) })
}

func publish(t *testing.T, b backend.Backend, room, user, key, text string) ackErr {
	t.Helper()
	return answer(t, "Publish", func(done func(ackErr)) { publishAsync(b, room, user, key, text, done) })
}

func mustPublish(t *testing.T, b backend.Backend, room, user, text string) backend.Ack {
	t.Helper()
	a := publish(t, b, room, user, "", text)
	if a.err != nil || a.Dup || a.Seq == 0 || a.Room != room {
		t.Fatalf("publish %q to %s: ack %+v, err %v", text, room, a.Ack, a.err)
	}
	return a.Ack
}

func rangeOf(t *testing.T, b backend.Backend, room string, after, before uint64, limit int) history.Page {
	t.Helper()
	type res struct {
		p   history.Page
		err error
	}
	r := answer(t, "Range", func(done func(res)) {
		b.Range(room, after, before, limit, func(p history.Page, err error) { done(res{p, err}) })
	})
	if r.err != nil {
		t.Fatalf("Range(%s, %d, %d, %d): %v", room, after, before, limit, r.err)
	}
	return r.p
}

func subscribe(t *testing.T, b backend.Backend, room string) {
	t.Helper()
	if err := answer(t, "Subscribe", func(done func(error)) { b.Subscribe(room, done) }); err != nil {
		t.Fatalf("Subscribe(%s): %v", room, err)
	}
}

// presence is what PresenceJoin and PresenceLeave answer.
type presence struct {
	elsewhere bool
	entries   int
}

func presenceOf(t *testing.T, call func(room, user string, done func(bool, int)), room, user string) presence {
	t.Helper()
	return answer(t, "presence of "+user, func(done func(presence)) {
		call(room, user, func(e bool, n int) { done(presence{e, n}) })
	})
}

// listed is PresenceList's answer as "[users] total".
func listed(t *testing.T, b backend.Backend, room string, max int) string {
	t.Helper()
	type res struct {
		users []string
		total int
		err   error
	}
	r := answer(t, "PresenceList", func(done func(res)) {
		b.PresenceList(room, max, func(u []string, n int, err error) { done(res{u, n, err}) })
	})
	if r.err != nil {
		t.Fatalf("PresenceList(%s): %v", room, r.err)
	}
	return fmt.Sprint(r.users, " ", r.total)
}

// frame is the part of a delivered frame the suite looks at.
type frame struct {
	Type string `json:"type"`
	Seq  uint64 `json:"seq"`
	User string `json:"user"` // events
	Text string `json:"text"` // messages
}

func (f frame) String() string { return fmt.Sprintf("%s:%d:%s%s", f.Type, f.Seq, f.User, f.Text) }

func isTyping(f frame) bool { return f.Type == "typing" && f.User == "ann" }

// member is a connection with a recording socket (its hub.Sink).
type member struct {
	c   *hub.Client
	mu  sync.Mutex
	buf []byte
}

func (m *member) Write(b []byte) (int, error) {
	m.mu.Lock()
	m.buf = append(m.buf, b...)
	m.mu.Unlock()
	return len(b), nil
}

func (m *member) Close() error { return nil }

// frames parses everything written so far: server text frames of JSON.
func (m *member) frames(t *testing.T) []frame {
	t.Helper()
	m.mu.Lock()
	b := slices.Clone(m.buf)
	m.mu.Unlock()
	var out []frame
	for len(b) > 0 {
		hl, n := codec.HeaderLen(b), uint64(b[1]&0x7F)
		switch hl {
		case 4:
			n = uint64(binary.BigEndian.Uint16(b[2:]))
		case 10:
			n = binary.BigEndian.Uint64(b[2:])
		}
		var f frame
		if b[0] != 0x81 || json.Unmarshal(b[hl:hl+int(n)], &f) != nil {
			t.Fatalf("not a text frame of JSON: % x", b)
		}
		out = append(out, f)
		b = b[hl+int(n):]
	}
	return out
}

// eventually polls cond until it holds; failing, it tells what it saw.
func eventually(t *testing.T, cond func() (ok bool, saw string)) {
	t.Helper()
	for deadline := time.Now().Add(wait); ; time.Sleep(5 * time.Millisecond) {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not so within %v: %s", wait, saw)
		}
	}
}

// waitMessages waits until n messages were delivered and returns them all.
func (m *member) waitMessages(t *testing.T, n int) (got []frame) {
	t.Helper()
	eventually(t, func() (bool, string) {
		got = slices.DeleteFunc(m.frames(t), func(f frame) bool { return f.Type != "message" })
		return len(got) >= n, fmt.Sprintf("%d of %d messages delivered: %v", len(got), n, got)
	})
	return got
}

// join connects user to room on nd as the gateway does: subscribe, make
// the member pending, read where the room stands, then send joined.
func join(t *testing.T, nd node, room, user string) *member {
	t.Helper()
	subscribe(t, nd.b, room)
	m := &member{}
	m.c = nd.h.NewClient(user, m, time.Now().UnixNano())
	nd.h.JoinBegin(m.c, room)
	for joined := false; !joined; {
		p := rangeOf(t, nd.b, room, 0, 0, 0)
		nd.h.JoinEnd(m.c, room, func(noted uint64) ([]byte, uint64, bool) {
			if joined = noted <= p.Latest; !joined {
				return nil, 0, false // read on
			}
			return codec.OwnedFrame(func(b []byte) []byte {
				return codec.AppendJoined(b, &codec.Joined{Room: room, Seq: p.Latest, Epoch: p.Epoch, Messages: [][]byte{}})
			}), p.Latest, true
		})
	}
	return m
}

func TestConformance(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, w world)
	}{
		{"ConcurrentPublish", testConcurrentPublish},
		{"Idempotency", testIdempotency},
		{"Range", testRange},
		{"Broadcast", testBroadcast},
		{"SubscribeUnsubscribe", testSubscribe},
		{"SecondNode", testSecondNode},
		{"ScriptFlush", testScriptFlush},
		{"Presence", testPresence},
		{"PresenceExpiry", testPresenceExpiry},
		{"ReadyClose", testClose},
	}
	for _, impl := range backends {
		t.Run(impl.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, impl.start(t)) })
			}
		})
	}
}

// testConcurrentPublish: senders publishing at once get seqs 1..N, each
// once, each sender's in the order it sent; a member gets every message
// once, in seq order, with the seq its sender was acked.
func testConcurrentPublish(t *testing.T, w world) {
	const senders, each, n = 4, 25, 4 * 25
	m := join(t, w.node, "r", "watcher")
	acks := make(chan ackErr, n)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() { // publishing without waiting for acks
			defer wg.Done()
			for i := range each {
				publishAsync(w.b, "r", fmt.Sprint("u", s), "", fmt.Sprint(s, "/", i), func(a ackErr) { acks <- a })
			}
		}()
	}
	wg.Wait()
	textOf, seqOf := map[uint64]string{n + 1: "barrier"}, map[string]uint64{}
	for _, a := range collect(t, acks, n) { // n distinct seqs in 1..n
		if a.err != nil || a.Dup || a.Room != "r" || a.Seq < 1 || a.Seq > n || textOf[a.Seq] != "" {
			t.Fatalf("ack %+v err %v for %q (seq taken by %q)", a.Ack, a.err, a.text, textOf[a.Seq])
		}
		textOf[a.Seq], seqOf[a.text] = a.text, a.Seq
	}
	for s := range senders {
		for i := 1; i < each; i++ {
			if prev, seq := seqOf[fmt.Sprint(s, "/", i-1)], seqOf[fmt.Sprint(s, "/", i)]; seq < prev {
				t.Fatalf("sender %d's publish %d has seq %d, below its previous one's %d", s, i, seq, prev)
			}
		}
	}
	if b := mustPublish(t, w.b, "r", "u", "barrier"); b.Seq != n+1 { // nothing more may come before it
		t.Fatalf("barrier acked seq %d", b.Seq)
	}
	for i, f := range m.waitMessages(t, n+1) {
		if f.Seq != uint64(i+1) || f.Text != textOf[f.Seq] {
			t.Fatalf("delivery %d is %v, want seq %d with %q", i, f, i+1, textOf[uint64(i+1)])
		}
	}
}

// testIdempotency: a user's key used again gets the original ack with Dup
// and stores and sends nothing; another user's same key is a new message.
func testIdempotency(t *testing.T, w world) {
	m := join(t, w.node, "idem", "watcher")
	first := publish(t, w.b, "idem", "ann", "k1", "first")
	again := publish(t, w.b, "idem", "ann", "k1", "again")
	if first.err != nil || first.Dup || first.Seq != 1 || again.err != nil || !again.Dup || again.Ack.Ack != first.Ack.Ack {
		t.Fatalf("a key twice: %+v %v, then %+v %v", first.Ack, first.err, again.Ack, again.err)
	}
	if other := publish(t, w.b, "idem", "bob", "k1", "other"); other.err != nil || other.Dup || other.Seq != 2 {
		t.Fatalf("another user's same key: %+v %v", other.Ack, other.err)
	}
	// The same key twice at once: one stored, the other a Dup of it.
	ch := make(chan ackErr, 2)
	publishAsync(w.b, "idem", "ann", "k2", "twin", func(a ackErr) { ch <- a })
	publishAsync(w.b, "idem", "ann", "k2", "twin again", func(a ackErr) { ch <- a })
	if tw := collect(t, ch, 2); tw[0].err != nil || tw[1].err != nil || tw[0].Dup == tw[1].Dup || tw[0].Ack.Ack != tw[1].Ack.Ack || tw[0].Seq != 3 {
		t.Fatalf("a key twice at once: %+v", tw)
	}
	mustPublish(t, w.b, "idem", "ann", "barrier")
	m.waitMessages(t, 4)
	if got, want := fmt.Sprint(m.frames(t)), "[joined:0: message:1:first message:2:other message:3:twin message:4:barrier]"; got != want {
		t.Fatalf("delivered %s, want %s", got, want)
	}
	if p := rangeOf(t, w.b, "idem", 0, math.MaxUint64, 10); p.Latest != 4 || len(p.Messages) != 4 {
		t.Fatalf("history after duplicates: latest %d, %d messages", p.Latest, len(p.Messages))
	}
}

// testRange: history reads after publishes, bounded and limited, with one
// epoch.
func testRange(t *testing.T, w world) {
	empty := rangeOf(t, w.b, "never", 0, math.MaxUint64, 10)
	if empty.Latest != 0 || len(empty.Messages) != 0 || !empty.Complete || empty.Epoch == "" {
		t.Fatalf("a room never written: %+v", empty)
	}
	for i := 1; i <= 5; i++ {
		mustPublish(t, w.b, "hist", "u", fmt.Sprint("m", i))
	}
	epoch := rangeOf(t, w.b, "hist", 0, 0, 0).Epoch
	if epoch == "" {
		t.Fatal("no epoch")
	}
	for _, c := range []struct {
		after, before uint64
		limit         int
		seqs          []uint64
		complete      bool
	}{
		{0, math.MaxUint64, 100, []uint64{1, 2, 3, 4, 5}, true},
		{0, 0, 0, nil, true}, // where the room stands
		{0, math.MaxUint64, 2, []uint64{4, 5}, false},
		{3, math.MaxUint64, 10, []uint64{4, 5}, true},
		{1, 4, 10, []uint64{2, 3}, true},
		{0, 3, 1, []uint64{2}, false},
		{5, math.MaxUint64, 10, nil, true},
		{2, 3, 10, nil, true}, // nothing lies between
	} {
		p := rangeOf(t, w.b, "hist", c.after, c.before, c.limit)
		var seqs []uint64
		for _, msg := range p.Messages {
			var f frame
			if err := json.Unmarshal(msg.Payload(), &f); err != nil || f.Seq != msg.Seq || f.Text != fmt.Sprint("m", msg.Seq) {
				t.Errorf("message %d of the history is %q (%v)", msg.Seq, msg.Payload(), err)
			}
			seqs = append(seqs, msg.Seq)
		}
		if !slices.Equal(seqs, c.seqs) || p.Complete != c.complete || p.Latest != 5 || p.Epoch != epoch {
			t.Errorf("Range(after %d, before %d, limit %d): seqs %v complete %v latest %d epoch %q; want %v %v 5 %q",
				c.after, c.before, c.limit, seqs, p.Complete, p.Latest, p.Epoch, c.seqs, c.complete, epoch)
		}
	}
}

func typing(room, user string) []byte {
	return codec.OwnedFrame(func(b []byte) []byte { return codec.AppendTyping(b, room, user) })
}

// testBroadcast: an event reaches every member but the excluded one, once.
func testBroadcast(t *testing.T, w world) {
	ann, bob := join(t, w.node, "bc", "ann"), join(t, w.node, "bc", "bob")
	w.b.Broadcast("bc", typing("bc", "ann"), ann.c, hub.KindTyping)
	mustPublish(t, w.b, "bc", "u", "barrier") // delivered after the event
	ann.waitMessages(t, 1)
	bob.waitMessages(t, 1)
	if got, want := fmt.Sprint(ann.frames(t)), "[joined:0: message:1:barrier]"; got != want {
		t.Errorf("excluded member got %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(bob.frames(t)), "[joined:0: typing:0:ann message:1:barrier]"; got != want {
		t.Errorf("member got %s, want %s", got, want)
	}
}

// testSubscribe: every Subscribe answers once; messages reach the members
// while a reference is held, and again once the room, given up, is taken
// back.
func testSubscribe(t *testing.T, w world) {
	m := join(t, w.node, "sub", "ann") // one reference
	subscribe(t, w.b, "sub")           // two
	mustPublish(t, w.b, "sub", "u", "1")
	w.b.Unsubscribe("sub") // one left
	mustPublish(t, w.b, "sub", "u", "2")
	m.waitMessages(t, 2)
	w.b.Unsubscribe("sub") // none: a message now need not reach this node
	subscribe(t, w.b, "sub")
	mustPublish(t, w.b, "sub", "u", "3")
	if got := fmt.Sprint(m.waitMessages(t, 3)); got != "[message:1:1 message:2:2 message:3:3]" {
		t.Fatalf("delivered %s", got)
	}
}

// testSecondNode: two nodes on one store are one chat: messages and events
// sent through either reach the other's members, in seq order.
func testSecondNode(t *testing.T, w world) {
	if w.peer == nil {
		t.Skip("a node alone has no other node")
	}
	n2 := w.peer(t, "n2", time.Hour)
	here, there := join(t, w.node, "two", "ann"), join(t, n2, "two", "bob")
	acks := make(chan ackErr, 20)
	for i := 1; i <= 20; i++ {
		publishAsync(w.b, "two", "ann", "", fmt.Sprint(i), func(a ackErr) { acks <- a })
	}
	for _, a := range collect(t, acks, 20) {
		if a.err != nil {
			t.Fatal(a.err)
		}
	}
	w.b.Broadcast("two", typing("two", "ann"), here.c, hub.KindTyping)
	eventually(t, func() (bool, string) { // the other node's member gets it
		got := there.frames(t)
		return slices.ContainsFunc(got, isTyping), fmt.Sprint("no typing event in ", got)
	})
	mustPublish(t, n2.b, "two", "bob", "21")
	for _, m := range []*member{here, there} {
		for i, f := range m.waitMessages(t, 21) {
			if f.Seq != uint64(i+1) || f.Text != fmt.Sprint(i+1) {
				t.Fatalf("delivery %d to %s is %v", i, m.c.User, f)
			}
		}
	}
	if got := here.frames(t); slices.ContainsFunc(got, isTyping) {
		t.Errorf("the excluded member got the typing event back: %v", got)
	}
}

// testScriptFlush: a store that lost its scripts (restarted) gets them
// again from the node, and every call still answers.
func testScriptFlush(t *testing.T, w world) {
	if w.flushScripts == nil {
		t.Skip("no scripts")
	}
	m := join(t, w.node, "flush", "ann")
	w.flushScripts(t)
	mustPublish(t, w.b, "flush", "ann", "after a flush")
	w.flushScripts(t)
	if p := rangeOf(t, w.b, "flush", 0, math.MaxUint64, 10); p.Latest != 1 || len(p.Messages) != 1 {
		t.Fatalf("Range after a flush: %+v", p)
	}
	w.flushScripts(t)
	if got := presenceOf(t, w.b.PresenceJoin, "flush", "ann"); got != (presence{false, 1}) {
		t.Fatalf("PresenceJoin after a flush: %+v", got)
	}
	w.flushScripts(t)
	if got := presenceOf(t, w.b.PresenceLeave, "flush", "ann"); got != (presence{false, 1}) {
		t.Fatalf("PresenceLeave after a flush: %+v", got)
	}
	m.waitMessages(t, 1)
}

// testPresence: joins and leaves of local users, and the sorted list.
func testPresence(t *testing.T, w world) {
	entries := func(n int) int { // what the room's entries are said to be
		if w.alone {
			return 0
		}
		return n
	}
	if got := listed(t, w.b, "pres", 10); got != "[] 0" {
		t.Fatalf("an empty room lists %s", got)
	}
	members := map[string]*member{}
	for i, u := range []string{"carol", "alice", "bob"} {
		members[u] = join(t, w.node, "pres", u)
		if got, want := presenceOf(t, w.b.PresenceJoin, "pres", u), (presence{false, entries(i + 1)}); got != want {
			t.Fatalf("PresenceJoin %s: %+v, want %+v", u, got, want)
		}
	}
	if got := listed(t, w.b, "pres", 10); got != "[alice bob carol] 3" {
		t.Fatalf("listed %s", got)
	}
	if got := listed(t, w.b, "pres", 2); got != "[alice bob] 3" {
		t.Fatalf("listed up to 2: %s", got)
	}
	w.h.Leave(members["bob"].c, "pres", nil)
	if got, want := presenceOf(t, w.b.PresenceLeave, "pres", "bob"), (presence{false, entries(3)}); got != want {
		t.Fatalf("PresenceLeave bob: %+v, want %+v", got, want)
	}
	if got := listed(t, w.b, "pres", 10); got != "[alice carol] 2" {
		t.Fatalf("listed after bob left: %s", got)
	}
}

// testPresenceExpiry: the users of a node that stopped without leaving
// drop out of the list once their entries expire (3 refresh periods);
// until then the node's refresh keeps them.
func testPresenceExpiry(t *testing.T, w world) {
	if w.peer == nil {
		t.Skip("presence follows this node's connections; nothing expires")
	}
	const refresh = 100 * time.Millisecond
	join(t, w.node, "exp", "alice")
	presenceOf(t, w.b.PresenceJoin, "exp", "alice")
	n2 := w.peer(t, "n2", refresh)
	join(t, n2, "exp", "dave")
	join(t, n2, "exp", "alice")
	if got := presenceOf(t, n2.b.PresenceJoin, "exp", "dave"); got != (presence{false, 2}) {
		t.Fatalf("PresenceJoin dave on n2: %+v", got)
	}
	if got := presenceOf(t, n2.b.PresenceJoin, "exp", "alice"); got != (presence{true, 3}) {
		t.Fatalf("PresenceJoin alice on n2, online on n1 too: %+v", got)
	}
	time.Sleep(5 * refresh) // past the first expiry: n2 refreshed its entries
	if got := listed(t, w.b, "exp", 10); got != "[alice dave] 2" {
		t.Fatalf("listed while n2 refreshes: %s", got)
	}
	if err := n2.close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() (bool, string) {
		got := listed(t, w.b, "exp", 10)
		return got == "[alice] 1", "n2 closed, still listed: " + got
	})
	if got := presenceOf(t, w.b.PresenceLeave, "exp", "alice"); got.elsewhere {
		t.Fatalf("alice is online elsewhere after n2's entries expired: %+v", got)
	}
}

// testClose: Ready once up; Close succeeds, and every call after it is
// still answered (with an error or not): a caller waiting on a callback
// must never wait forever. A second Close is harmless.
func testClose(t *testing.T, w world) {
	if !w.b.Ready() {
		t.Fatal("not Ready once up")
	}
	if err := w.close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ch := make(chan ackErr, 1)
	publishAsync(w.b, "closed", "u", "", "late", func(a ackErr) { ch <- a })
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatalf("a Publish after Close was never answered (Ready says %v)", w.b.Ready())
	}
	rch := make(chan error, 1)
	w.b.Range("closed", 0, 0, 0, func(_ history.Page, err error) { rch <- err })
	select {
	case <-rch:
	case <-time.After(time.Second):
		t.Fatal("a Range after Close was never answered")
	}
	if err := w.b.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}
