package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/internal/wstest"
)

// The durable history store (--data-dir, gateway/history/disk*.go) through
// the real binary: what an acknowledged message becomes after the process
// is killed, how far back a room pages, and what retention and the disk
// budget remove. Each test gives the store a directory of its own
// (t.TempDir) explicitly, so that a second process can open the same one
// once the first has exited (bbolt locks the file).

// durFast are flags every process here gets: a pipelining test client
// must not meet the rate limit or the outbound cap (it reads all the time,
// but its own deliveries of a 10,000-message burst come in a rush).
var durFast = []string{"--rate", "1000000", "--burst", "1000000", "--outbound-max-bytes", "67108864"}

// startDurable starts a gateway keeping its history in dir.
func startDurable(t *testing.T, dir string, args ...string) *gwProc {
	t.Helper()
	return startGateway(t, nil, append(append([]string{"--data-dir", dir}, durFast...), args...)...)
}

// durKill kills p with SIGKILL and waits until it is gone: no drain, no
// Close of the store; whatever the process had not written is lost.
func durKill(t *testing.T, p *gwProc) {
	t.Helper()
	p.signal(syscall.SIGKILL)
	if err := p.waitExit(10 * time.Second); exitSignal(err) != syscall.SIGKILL {
		t.Fatalf("process ended with %v, want death by SIGKILL", err)
	}
}

// durStop ends p with SIGTERM (drain, then the store's Close) and wants
// exit status 0.
func durStop(t *testing.T, p *gwProc) {
	t.Helper()
	p.signal(syscall.SIGTERM)
	if err := p.waitExit(15 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0", err)
	}
}

// durMsg is a stored message as the tests compare it.
type durMsg struct {
	room string
	seq  uint64
	ts   int64
	from string
	to   string
	text string
}

func (m durMsg) String() string {
	return fmt.Sprintf("%s#%d@%d %s->%s %q", m.room, m.seq, m.ts, m.from, m.to, m.text)
}

// durTS is a frame's ts: Unix milliseconds, exact in a float64.
func durTS(f wsFrame) int64 { v, _ := f["ts"].(float64); return int64(v) }

// durParse reads a message object (live, or inside joined and history).
func durParse(t *testing.T, v any) durMsg {
	t.Helper()
	o, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("message %v is not an object", v)
	}
	f := wsFrame(o)
	if f.Str("type") != "message" {
		t.Fatalf("%v is not a message", f)
	}
	return durMsg{room: f.Str("room"), seq: f.Num("seq"), ts: durTS(f), from: f.Str("from"), to: f.Str("to"), text: f.Str("text")}
}

// durMessages is the messages field of a joined or history frame.
func durMessages(t *testing.T, f wsFrame) []durMsg {
	t.Helper()
	raw, ok := f["messages"].([]any)
	if !ok {
		t.Fatalf("%s frame without a messages list: %v", f.Str("type"), f)
	}
	out := make([]durMsg, len(raw))
	for i, v := range raw {
		out[i] = durParse(t, v)
	}
	return out
}

// durAck reads an ack as the message it acknowledges (from, to and text
// are the caller's).
func durAck(t *testing.T, f wsFrame) durMsg {
	t.Helper()
	if f.Str("type") != "ack" || f.Num("seq") == 0 || durTS(f) == 0 {
		t.Fatalf("want an ack with a seq and a ts, got %v", f)
	}
	return durMsg{room: f.Str("room"), seq: f.Num("seq"), ts: durTS(f)}
}

var durIDs atomic.Uint64

// durPipe sends reqs on c (each gets an id of its own), keeping at most
// window of them unanswered, and returns the reply to each, in reqs'
// order. Frames that answer none of them (deliveries, events, earlier
// replies) are dropped.
func durPipe(t *testing.T, c *wstest.Client, reqs []map[string]any, window int) []wsFrame {
	t.Helper()
	out := make([]wsFrame, len(reqs))
	at := make(map[string]int, window)
	sent, got := 0, 0
	for got < len(reqs) {
		for sent < len(reqs) && sent-got < window {
			r := maps.Clone(reqs[sent])
			id := fmt.Sprintf("p%d", durIDs.Add(1))
			r["id"] = id
			at[id] = sent
			c.Send(r)
			sent++
		}
		f := c.Next()
		if i, ok := at[f.Str("id")]; ok {
			delete(at, f.Str("id"))
			out[i] = f
			got++
		}
	}
	return out
}

// durScroll pages room's history back as a client scrolls: the newest
// limit messages, then before = the oldest seq seen, until a page is
// empty. It returns the messages newest first and fails the test unless
// every page is ascending, holds at most limit messages, and lies wholly
// below the page before it.
func durScroll(t *testing.T, c *wstest.Client, room string, limit int) []durMsg {
	t.Helper()
	var all []durMsg
	for page := 0; ; page++ {
		if page > 100000/limit+10 {
			t.Fatalf("history of %s: still not empty after %d pages", room, page)
		}
		req := map[string]any{"type": "history", "id": fmt.Sprintf("h%d", durIDs.Add(1)), "room": room, "limit": limit}
		if len(all) > 0 {
			req["before"] = all[len(all)-1].seq
		}
		h := c.Request(req)
		if h.Str("type") != "history" || h.Str("room") != room {
			t.Fatalf("history %v: %v", req, h)
		}
		msgs := durMessages(t, h)
		if len(msgs) == 0 {
			return all
		}
		if len(msgs) > limit {
			t.Fatalf("history %v: %d messages, over the limit", req, len(msgs))
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			m := msgs[i]
			if m.room != room {
				t.Fatalf("history of %s holds %v", room, m)
			}
			if len(all) > 0 && m.seq >= all[len(all)-1].seq {
				t.Fatalf("history of %s, page %d (%v): seq %d after %d: pages not in order, overlapping or repeating",
					room, page, req, m.seq, all[len(all)-1].seq)
			}
			all = append(all, m)
		}
	}
}

// durSame fails the test unless got and want hold the same messages
// (room, seq, ts, from, to, text), in order.
func durSame(t *testing.T, what string, got, want []durMsg) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages, want %d\ngot  %v\nwant %v", what, len(got), len(want), durShort(got), durShort(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: message %d is %v, want %v", what, i, got[i], want[i])
		}
	}
}

// durShort is a list of messages cut for a failure message.
func durShort(ms []durMsg) string {
	if len(ms) <= 6 {
		return fmt.Sprint(ms)
	}
	return fmt.Sprintf("%v ... %v", ms[:3], ms[len(ms)-3:])
}

// durResume joins room on c with since {seq, epoch}.
func durResume(t *testing.T, c *wstest.Client, room string, seq uint64, epoch string) wsFrame {
	t.Helper()
	j := c.Request(map[string]any{"type": "join", "id": fmt.Sprintf("r%d", durIDs.Add(1)), "room": room,
		"since": map[string]any{"seq": seq, "epoch": epoch}})
	if j.Str("type") != "joined" || j.Str("room") != room {
		t.Fatalf("resume %s since %d: %v", room, seq, j)
	}
	return j
}

// TestDurableRestartAfterSIGKILL: 300 acknowledged messages (three rooms
// and DMs to bob, every fifth with an idempotency key, --history-sync
// always, the default) survive a SIGKILL. A new process on the same
// --data-dir resumes each room from a third of the way in with recovered
// true, the same epoch and exactly the missed messages (seq, ts, from,
// text as acknowledged); bob's inbox holds every DM and alice's inbox its
// copies; a keyed send and a keyed DM re-sent after the restart get their
// original ack (seq and ts) and store nothing, so the next send in the room
// gets latest+1.
func TestDurableRestartAfterSIGKILL(t *testing.T) {
	dir := t.TempDir()
	p := startDurable(t, dir)
	alice := dialNode(t, p.addr, "alice")
	bob := dialNode(t, p.addr, "bob")
	epochs := map[string]string{}
	for _, c := range []*wstest.Client{alice, bob} {
		in := c.WaitFor("joined", func(f wsFrame) bool { return f.Str("room") == "@"+c.User })
		epochs["@"+c.User] = in.Str("epoch")
	}
	rooms := []string{"lobby", "dev", "ops"}
	for _, r := range rooms {
		j := alice.Join(r)
		if j.Num("seq") != 0 || j.Str("epoch") == "" {
			t.Fatalf("join of new room %s in a new store: %v, want seq 0 and an epoch", r, j)
		}
		epochs[r] = j.Str("epoch")
	}

	const n = 300
	reqs := make([]map[string]any, n)
	keys := map[int]string{}
	for i := range reqs {
		text := fmt.Sprintf("m%03d", i)
		if i%4 == 3 {
			reqs[i] = map[string]any{"type": "dm", "to": "bob", "text": text}
		} else {
			reqs[i] = map[string]any{"type": "send", "room": rooms[i%4], "text": text}
		}
		if i%5 == 0 {
			keys[i] = fmt.Sprintf("key-%03d", i)
			reqs[i]["key"] = keys[i]
		}
	}
	start := time.Now()
	replies := durPipe(t, alice, reqs, 16)
	acked := map[string][]durMsg{} // by room, in send order
	byIndex := make([]durMsg, n)
	for i, f := range replies {
		m := durAck(t, f)
		m.from, m.text = "alice", reqs[i]["text"].(string)
		want := "@bob"
		if i%4 != 3 {
			want = rooms[i%4]
		} else {
			m.to = "bob"
		}
		if m.room != want {
			t.Fatalf("ack of request %d is for %s, want %s: %v", i, m.room, want, f)
		}
		acked[m.room] = append(acked[m.room], m)
		byIndex[i] = m
	}
	for room, ms := range acked {
		for i, m := range ms {
			if m.seq != uint64(i+1) {
				t.Fatalf("%s: the %d-th ack has seq %d: acks of one room must count 1, 2, ...", room, i+1, m.seq)
			}
		}
	}
	t.Logf("%d messages acknowledged in %v (rooms %v, @bob %d)", n, time.Since(start).Round(time.Millisecond), rooms, len(acked["@bob"]))

	durKill(t, p)
	p2 := startDurable(t, dir)

	alice2 := dialNode(t, p2.addr, "alice")
	for _, r := range rooms {
		ms := acked[r]
		from := len(ms) / 3
		j := durResume(t, alice2, r, ms[from-1].seq, epochs[r])
		if j["recovered"] != true || j.Str("epoch") != epochs[r] || j.Num("seq") != ms[len(ms)-1].seq {
			t.Fatalf("resume of %s since %d after SIGKILL: recovered %v epoch %q seq %v, want recovered true, epoch %q, seq %d",
				r, ms[from-1].seq, j["recovered"], j.Str("epoch"), j["seq"], epochs[r], ms[len(ms)-1].seq)
		}
		durSame(t, "resume of "+r+" after SIGKILL", durMessages(t, j), ms[from:])
	}

	// bob's inbox: the joined after welcome stands at the last DM; a
	// resume from 0 carries them all (75, within --history-size 100).
	bob2 := dialNode(t, p2.addr, "bob")
	dms := acked["@bob"]
	in := bob2.WaitFor("joined", func(f wsFrame) bool { return f.Str("room") == "@bob" })
	if in.Num("seq") != dms[len(dms)-1].seq || in.Str("epoch") != epochs["@bob"] {
		t.Fatalf("bob's inbox after SIGKILL: %v, want seq %d epoch %q", in, dms[len(dms)-1].seq, epochs["@bob"])
	}
	j := durResume(t, bob2, "@bob", 0, epochs["@bob"])
	if j["recovered"] != true {
		t.Fatalf("resume of @bob from 0: %v, want recovered true", j)
	}
	durSame(t, "bob's inbox after SIGKILL", durMessages(t, j), dms)

	// alice's inbox: the copies of her DMs, in the same order, numbered
	// by her inbox.
	var copies []durMsg
	for i, m := range dms {
		copies = append(copies, durMsg{room: "@alice", seq: uint64(i + 1), from: "alice", to: "bob", text: m.text})
	}
	j = durResume(t, alice2, "@alice", 0, epochs["@alice"])
	got := durMessages(t, j)
	for i := range got {
		got[i].ts = 0 // the copy's ts is its own, never acknowledged
	}
	if j["recovered"] != true {
		t.Fatalf("resume of @alice from 0: %v, want recovered true", j)
	}
	durSame(t, "alice's inbox (copies of her DMs) after SIGKILL", got, copies)

	// Re-sent keys: the original ack, whatever the new frame says.
	for _, i := range []int{0, 15} { // a send to lobby, a DM to bob
		orig := byIndex[i]
		r := maps.Clone(reqs[i])
		r["text"] = "changed " + keys[i]
		a := durAck(t, durPipe(t, alice2, []map[string]any{r}, 1)[0])
		if a.room != orig.room || a.seq != orig.seq || a.ts != orig.ts {
			t.Fatalf("re-sent key %s after SIGKILL: ack %v, want the original %v", keys[i], a, orig)
		}
	}
	for _, room := range []string{"lobby", "@bob"} {
		want := acked[room][len(acked[room])-1].seq + 1
		r := map[string]any{"type": "send", "room": room, "text": "after"}
		if room == "@bob" {
			r = map[string]any{"type": "dm", "to": "bob", "text": "after"}
		}
		if a := durAck(t, durPipe(t, alice2, []map[string]any{r}, 1)[0]); a.seq != want {
			t.Fatalf("new message to %s after the re-sent key: seq %d, want %d (the duplicate stored nothing)", room, a.seq, want)
		}
	}
}

// burstMsg is one message a burster sent.
type burstMsg struct{ key, room, text string }

// burster sends keyed messages as fast as its window allows, from
// goroutines of its own, over a wstest.Client whose frames it reads off
// the channel directly, until the connection ends.
type burster struct {
	user  string
	c     *wstest.Client
	slots chan struct{}
	dead  chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	sent   []burstMsg        // in sending order, each listed before it is written
	acks   map[string]durMsg // by key
	errors []wsFrame
}

func newBurster(t *testing.T, addr, user string, rooms []string, window int) *burster {
	t.Helper()
	c := dialNode(t, addr, user)
	for _, r := range rooms {
		c.Join(r)
	}
	return &burster{user: user, c: c, slots: make(chan struct{}, window), dead: make(chan struct{}), acks: map[string]durMsg{}}
}

// run starts sending: message i goes to rooms[i%len(rooms)] with key and
// id prefix-i.
func (b *burster) run(prefix string, rooms []string) {
	b.wg.Add(2)
	go func() { // reader: acks free slots; the end of the stream ends both
		defer b.wg.Done()
		defer close(b.dead)
		for f := range b.c.Frames {
			switch f.Str("type") {
			case "ack":
				b.mu.Lock()
				b.acks[f.Str("id")] = durMsg{room: f.Str("room"), seq: f.Num("seq"), ts: durTS(f)}
				b.mu.Unlock()
				<-b.slots
			case "error":
				b.mu.Lock()
				b.errors = append(b.errors, f)
				b.mu.Unlock()
				<-b.slots
			}
		}
	}()
	go func() { // writer
		defer b.wg.Done()
		for i := 0; ; i++ {
			select {
			case b.slots <- struct{}{}:
			case <-b.dead:
				return
			}
			m := burstMsg{key: fmt.Sprintf("%s-%d", prefix, i), room: rooms[i%len(rooms)]}
			m.text = "t-" + m.key
			b.mu.Lock()
			b.sent = append(b.sent, m)
			b.mu.Unlock()
			frame, _ := json.Marshal(map[string]any{"type": "send", "id": m.key, "room": m.room, "text": m.text, "key": m.key})
			if b.c.WS.WriteMessage(websocket.TextMessage, frame) != nil {
				return
			}
		}
	}()
}

// TestDurableKillMidBurst: three rounds on one accumulating --data-dir.
// Each round, three users send keyed messages to two rooms as fast as a
// window of 16 each allows; the process is killed with SIGKILL 50-150 ms
// (at random) after the burst's first ack; a new process opens the same
// directory. Then, per room: the epoch is the one of round 1; paging the
// whole history back gives
// seqs 1..latest with no hole, every message of the earlier rounds as it
// was, and every message acknowledged before the kill at its acked seq and
// ts. Each user re-sends everything it sent this round with the same keys:
// an acknowledged one gets its original ack; an unacknowledged one either
// the seq where it was stored after all (a duplicate) or a new seq right
// after the room's latest. Afterwards each message of the round is in the
// room exactly once, still with no hole, and a new send gets latest+1. The
// process doing the checks is the next round's target.
func TestDurableKillMidBurst(t *testing.T) {
	dir := t.TempDir()
	rooms := []string{"burst-a", "burst-b"}
	users := []string{"u0", "u1", "u2"}
	epoch := ""
	content := map[string][]durMsg{} // every room's messages after the last check, by seq (index seq-1)
	p := startDurable(t, dir)
	for round := 1; round <= 3; round++ {
		bs := make([]*burster, len(users))
		for i, u := range users {
			bs[i] = newBurster(t, p.addr, u, rooms, 16)
		}
		delay := time.Duration(50+rand.IntN(101)) * time.Millisecond
		for _, b := range bs {
			b.run(fmt.Sprintf("r%d-%s", round, b.user), rooms)
		}
		// The delay runs from the first ack: on a loaded machine the
		// first fsync alone may take longer than it.
		poll(t, 10*time.Second, "a first ack in the burst", func() bool {
			for _, b := range bs {
				b.mu.Lock()
				n := len(b.acks)
				b.mu.Unlock()
				if n > 0 {
					return true
				}
			}
			return false
		})
		time.Sleep(delay)
		durKill(t, p)
		for _, b := range bs {
			ended := make(chan struct{})
			go func() { b.wg.Wait(); close(ended) }()
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d: %s's connection did not end after the SIGKILL", round, b.user)
			}
			if len(b.errors) > 0 {
				t.Fatalf("round %d: %s got errors during the burst: %v", round, b.user, b.errors)
			}
		}
		p = startDurable(t, dir)

		checker := dialNode(t, p.addr, "checker")
		latest := map[string]uint64{}
		stored := map[string]map[uint64]durMsg{} // room -> seq -> message, as paged back
		for _, r := range rooms {
			j := checker.Join(r)
			if epoch == "" {
				epoch = j.Str("epoch")
			}
			if j.Str("epoch") != epoch {
				t.Fatalf("round %d: %s has epoch %q after SIGKILL, want %q (the store's life goes on)", round, r, j.Str("epoch"), epoch)
			}
			latest[r] = j.Num("seq")
			all := durScroll(t, checker, r, 100)
			if uint64(len(all)) != latest[r] || (len(all) > 0 && (all[0].seq != latest[r] || all[len(all)-1].seq != 1)) {
				t.Fatalf("round %d: %s pages back %d messages (%s), want seqs %d..1 with no hole",
					round, r, len(all), durShort(all), latest[r])
			}
			stored[r] = map[uint64]durMsg{}
			for _, m := range all {
				stored[r][m.seq] = m
			}
			for _, old := range content[r] {
				if got := stored[r][old.seq]; got != old {
					t.Fatalf("round %d: %s seq %d is %v, was %v before this round", round, r, old.seq, got, old)
				}
			}
		}
		nSent, nAcked := 0, 0
		for _, b := range bs {
			for _, m := range b.sent {
				a, ok := b.acks[m.key]
				nSent++
				if !ok {
					continue
				}
				nAcked++
				got, there := stored[m.room][a.seq]
				if a.room != m.room || !there || got.text != m.text || got.ts != a.ts || got.from != b.user {
					t.Fatalf("round %d: %s's acked message %q (ack %v) is %v after SIGKILL (held: %v)", round, b.user, m.text, a, got, there)
				}
			}
		}
		t.Logf("round %d: SIGKILL %v into the burst: %d sent, %d acked; rooms at %v", round, delay, nSent, nAcked, latest)
		if nAcked == 0 {
			t.Fatalf("round %d: nothing acknowledged within %v: the burst did not run", round, delay)
		}

		// Re-send everything of the round, with the keys.
		dups, news := 0, 0
		for _, b := range bs {
			c := dialNode(t, p.addr, b.user)
			for _, r := range rooms {
				c.Join(r)
			}
			reqs := make([]map[string]any, len(b.sent))
			for i, m := range b.sent {
				reqs[i] = map[string]any{"type": "send", "room": m.room, "text": m.text, "key": m.key}
			}
			for i, f := range durPipe(t, c, reqs, 32) {
				m, a := b.sent[i], durAck(t, f)
				orig, wasAcked := b.acks[m.key]
				switch {
				case a.room != m.room:
					t.Fatalf("round %d: re-sent %q acked for room %s", round, m.key, a.room)
				case wasAcked && a != orig:
					t.Fatalf("round %d: re-sent acked key %q after SIGKILL: ack %v, want the original %v", round, m.key, a, orig)
				case a.seq <= latest[m.room]:
					if got := stored[m.room][a.seq]; got.text != m.text || got.ts != a.ts {
						t.Fatalf("round %d: re-sent %q answered as a duplicate of seq %d, which holds %v", round, m.key, a.seq, got)
					}
					if !wasAcked {
						dups++
					}
				default:
					news++
					latest[m.room]++
					if a.seq != latest[m.room] {
						t.Fatalf("round %d: re-sent %q stored at seq %d, want %d (right after the room's latest)", round, m.key, a.seq, latest[m.room])
					}
				}
			}
			_ = c.Close()
		}
		t.Logf("round %d: re-sent %d: %d unacked ones were stored already, %d stored now", round, nSent, dups, news)

		// Each message of the round once; the room goes on at latest+1.
		for _, r := range rooms {
			all := durScroll(t, checker, r, 100)
			if uint64(len(all)) != latest[r] || (len(all) > 0 && all[len(all)-1].seq != 1) {
				t.Fatalf("round %d: after the re-sends %s pages back %d messages (%s), want seqs %d..1", round, r, len(all), durShort(all), latest[r])
			}
			seen := map[string]int{}
			for _, m := range all {
				seen[m.text]++
			}
			for _, b := range bs {
				for _, m := range b.sent {
					if m.room == r && seen[m.text] != 1 {
						t.Fatalf("round %d: %s holds %q %d times after the re-send, want once", round, r, m.text, seen[m.text])
					}
				}
			}
			a := checker.Request(map[string]any{"type": "send", "id": "n-" + r, "room": r, "text": fmt.Sprintf("r%d-after", round)})
			if am := durAck(t, a); am.seq != latest[r]+1 {
				t.Fatalf("round %d: new send to %s got seq %d, want %d", round, r, am.seq, latest[r]+1)
			}
			all = durScroll(t, checker, r, 100)
			content[r] = make([]durMsg, len(all))
			for _, m := range all {
				content[r][m.seq-1] = m
			}
		}
		_ = checker.Close() // not a member while the next burst runs
	}
}

// TestDurableScrollback: 10,000 messages in one room, pipelined; paging
// back with history (limit 100, before = the oldest seq seen) until an
// empty page gives seq 10,000 down to 1, each once, ts never increasing,
// each with the text that was acked at its seq. After SIGTERM and a new
// process on the same --data-dir, the same pages hold the same messages.
func TestDurableScrollback(t *testing.T) {
	const n = 10000
	dir := t.TempDir()
	p := startDurable(t, dir, "--drain-timeout", "2s")
	alice := dialNode(t, p.addr, "alice")
	alice.Join("long")
	reqs := make([]map[string]any, n)
	for i := range reqs {
		reqs[i] = map[string]any{"type": "send", "room": "long", "text": fmt.Sprintf("line %05d", i)}
	}
	start := time.Now()
	replies := durPipe(t, alice, reqs, 256)
	want := make([]durMsg, n) // newest first, as scrolled
	for i, f := range replies {
		a := durAck(t, f)
		if a.seq != uint64(i+1) {
			t.Fatalf("message %d acked with seq %d", i, a.seq)
		}
		a.from, a.text = "alice", reqs[i]["text"].(string)
		want[n-1-i] = a
	}
	t.Logf("%d messages acknowledged in %v", n, time.Since(start).Round(time.Millisecond))

	check := func(what string, c *wstest.Client) {
		t.Helper()
		start := time.Now()
		got := durScroll(t, c, "long", 100)
		for i := 1; i < len(got); i++ {
			if got[i].ts > got[i-1].ts {
				t.Fatalf("%s: seq %d has ts %d, after seq %d's %d", what, got[i].seq, got[i].ts, got[i-1].seq, got[i-1].ts)
			}
		}
		durSame(t, what, got, want)
		t.Logf("%s: %d messages paged back in %v", what, len(got), time.Since(start).Round(time.Millisecond))
	}
	check("scrollback", alice)

	_ = alice.Close()
	durStop(t, p)
	p2 := startDurable(t, dir)
	bob := dialNode(t, p2.addr, "bob")
	if j := bob.Join("long"); j.Num("seq") != n {
		t.Fatalf("after the restart: %v, want seq %d", j, n)
	}
	check("scrollback after SIGTERM and a restart", bob)
}

// TestDurableRetention: --history-keep 50 keeps the newest 50 of 120
// messages: history pages back to seq 71 exactly; a resume since 70 is
// recovered with 71..120, since 69 (message 70 is gone) is not and carries
// the newest messages. --history-retention 2s (sweeping every 200 ms)
// empties two rooms no sooner than 2 s after their newest message and
// within 1.5 s more, keeping every message until 2 s after the oldest; the
// seq goes on: a resume at the latest seq is recovered, a send gets
// latest+1 under the same epoch, and after SIGTERM and a new process a
// room emptied by retention is at the same seq and epoch and goes on.
func TestDurableRetention(t *testing.T) {
	t.Run("keep", func(t *testing.T) {
		p := startDurable(t, t.TempDir(), "--history-keep", "50", "--history-sweep", "200ms")
		alice := dialNode(t, p.addr, "alice")
		epoch := alice.Join("kept").Str("epoch")
		reqs := make([]map[string]any, 120)
		var acked []durMsg
		for i := range reqs {
			reqs[i] = map[string]any{"type": "send", "room": "kept", "text": fmt.Sprintf("k%d", i+1)}
		}
		for i, f := range durPipe(t, alice, reqs, 8) {
			a := durAck(t, f)
			a.from, a.text = "alice", reqs[i]["text"].(string)
			acked = append(acked, a)
		}
		newest50 := acked[70:]
		var all []durMsg
		poll(t, 3*time.Second, "history down to the newest 50", func() bool {
			all = durScroll(t, alice, "kept", 100)
			return len(all) <= 50
		})
		slices.Reverse(all)
		durSame(t, "history with --history-keep 50", all, newest50)

		bob := dialNode(t, p.addr, "bob")
		j := durResume(t, bob, "kept", 70, epoch)
		if j["recovered"] != true || j.Num("seq") != 120 {
			t.Fatalf("resume since 70 (71 is the oldest kept): %v, want recovered true at seq 120", j)
		}
		durSame(t, "resume since 70", durMessages(t, j), newest50)
		for _, since := range []uint64{69, 5} {
			j = durResume(t, bob, "kept", since, epoch)
			if j["recovered"] != false || j.Num("seq") != 120 || j.Str("epoch") != epoch {
				t.Fatalf("resume since %d (message 70 is gone): %v, want recovered false at seq 120, same epoch", since, j)
			}
			durSame(t, fmt.Sprintf("resume since %d: the newest messages", since), durMessages(t, j), newest50)
		}
	})

	t.Run("age", func(t *testing.T) {
		const age = 2 * time.Second
		dir := t.TempDir()
		args := []string{"--history-retention", age.String(), "--history-sweep", "200ms", "--drain-timeout", "2s"}
		p := startDurable(t, dir, args...)
		alice := dialNode(t, p.addr, "alice")
		rooms := []string{"aging", "aging-idle"}
		epoch := ""
		var reqs []map[string]any
		for _, r := range rooms {
			epoch = alice.Join(r).Str("epoch")
			for i := range 10 {
				reqs = append(reqs, map[string]any{"type": "send", "room": r, "text": fmt.Sprintf("%s %d", r, i)})
			}
		}
		var first, last int64
		for _, f := range durPipe(t, alice, reqs, 4) {
			a := durAck(t, f)
			if first == 0 {
				first = a.ts
			}
			last = max(last, a.ts)
		}
		// Every message stays until 2 s after the oldest; every room is
		// empty 2 s after its newest plus a few sweeps.
		for {
			n := map[string]int{}
			for _, r := range rooms {
				n[r] = len(durScroll(t, alice, r, 100))
			}
			// After the reads: any removal they saw was made before now.
			now := time.Now().UnixMilli()
			if now < first+age.Milliseconds() && (n[rooms[0]] != 10 || n[rooms[1]] != 10) {
				t.Fatalf("%d ms after the oldest message, with --history-retention %v: rooms hold %v, want 10 each",
					now-first, age, n)
			}
			if n[rooms[0]] == 0 && n[rooms[1]] == 0 {
				if now < last+age.Milliseconds() {
					t.Fatalf("history empty %d ms after the newest message, before --history-retention %v", now-last, age)
				}
				t.Logf("history empty %d ms after the newest message", now-last)
				break
			}
			if now > last+age.Milliseconds()+1500 {
				t.Fatalf("%d ms after the newest message, with --history-retention %v and --history-sweep 200ms: rooms hold %v, want none",
					now-last, age, n)
			}
			time.Sleep(100 * time.Millisecond)
		}

		// The seq goes on: nothing missed since 10, and 10 itself gone.
		// The removal is visible a moment before the store's bounds
		// follow it (TestDurableResumeAtRetentionEdge): let it settle.
		time.Sleep(500 * time.Millisecond)
		bob := dialNode(t, p.addr, "bob")
		for _, r := range rooms {
			j := durResume(t, bob, r, 10, epoch)
			if j["recovered"] != true || j.Num("seq") != 10 || j.Str("epoch") != epoch || len(durMessages(t, j)) != 0 {
				t.Fatalf("resume of emptied %s at its latest seq: %v, want recovered true, seq 10, epoch %q, no messages", r, j, epoch)
			}
			j = durResume(t, bob, r, 5, epoch)
			if j["recovered"] != false || j.Num("seq") != 10 || len(durMessages(t, j)) != 0 {
				t.Fatalf("resume of emptied %s since 5: %v, want recovered false, seq 10, no messages", r, j)
			}
		}
		if a := durAck(t, alice.SendText("aging", "later")); a.seq != 11 {
			t.Fatalf("send to the emptied room: seq %d, want 11", a.seq)
		}

		_ = alice.Close()
		_ = bob.Close()
		durStop(t, p)
		p2 := startDurable(t, dir, args...)
		carol := dialNode(t, p2.addr, "carol")
		for r, want := range map[string]uint64{"aging-idle": 10, "aging": 11} {
			j := carol.Join(r)
			if j.Num("seq") != want || j.Str("epoch") != epoch {
				t.Fatalf("%s after the restart: %v, want seq %d, epoch %q", r, j, want, epoch)
			}
			if a := durAck(t, carol.SendText(r, "after restart "+r)); a.seq != want+1 {
				t.Fatalf("send to %s after the restart: seq %d, want %d", r, a.seq, want+1)
			}
		}
	})
}

// TestDurableDiskBudget: --history-max-disk 384 KiB, swept every 200 ms,
// against about 1.3 MB of messages (1 KB each, 2-3 a bbolt page): first
// 150 to "early", then 150 each to a, b and c in turn, then 3 newest to
// each room. Within a few sweeps after the last write
// gateway_history_disk_used_bytes is at most the budget plus one 4 KiB
// page. The oldest go first: no message of a, b or c was removed while
// "early" kept any of its first 150; each room keeps a contiguous run up
// to its newest message, its 3 newest among them; among a, b and c
// (written in turn), the messages kept that are older than the newest one
// removed are at most a tenth of a room plus 2 (the store removes the
// oldest tenth of the room holding the oldest message at a time); and the
// node takes a new message in each room at latest+1.
func TestDurableDiskBudget(t *testing.T) {
	const budget, page = 384 << 10, 4096
	p := startDurable(t, t.TempDir(), "--history-max-disk", fmt.Sprint(budget), "--history-sweep", "200ms")
	alice := dialNode(t, p.addr, "alice")
	rooms := []string{"early", "a", "b", "c"}
	for _, r := range rooms {
		alice.Join(r)
	}
	pad := strings.Repeat("x", 1000)
	acked := map[string][]durMsg{}
	send := func(reqs []map[string]any) {
		for i, f := range durPipe(t, alice, reqs, 32) {
			a := durAck(t, f)
			a.from, a.text = "alice", reqs[i]["text"].(string)
			acked[a.room] = append(acked[a.room], a)
		}
	}
	msg := func(room string, i int) map[string]any {
		return map[string]any{"type": "send", "room": room, "text": fmt.Sprintf("%s %03d %s", room, i, pad)}
	}
	var phase []map[string]any
	for i := range 150 {
		phase = append(phase, msg("early", i))
	}
	send(phase)
	time.Sleep(5 * time.Millisecond) // "early"'s first 150 strictly older than the rest
	phase = nil
	for i := range 150 {
		for _, r := range rooms[1:] {
			phase = append(phase, msg(r, i))
		}
	}
	send(phase)
	phase = nil
	for i := range 3 {
		for _, r := range rooms {
			phase = append(phase, msg(r, 1000+i))
		}
	}
	send(phase)

	start := time.Now()
	var used float64
	poll(t, 5*time.Second, "gateway_history_disk_used_bytes within --history-max-disk", func() bool {
		used = metric(t, p.admin, "gateway_history_disk_used_bytes")
		return used <= budget+page
	})
	t.Logf("in use %.0f bytes (budget %d) %v after the last write; file %.0f bytes", used, budget,
		time.Since(start).Round(time.Millisecond), metric(t, p.admin, "gateway_history_disk_bytes"))

	kept := map[string][]durMsg{} // oldest first
	removed := map[string]int{}
	for _, r := range rooms {
		all := durScroll(t, alice, r, 100)
		slices.Reverse(all)
		ms := acked[r]
		if len(all) < 3 {
			t.Fatalf("%s keeps %d messages, want at least its 3 newest", r, len(all))
		}
		removed[r] = len(ms) - len(all)
		durSame(t, r+": what the budget keeps is the newest, contiguous", all, ms[removed[r]:])
		kept[r] = all
	}
	t.Logf("removed per room: %v", removed)
	if removed["a"]+removed["b"]+removed["c"] > 0 && removed["early"] < 150 {
		t.Fatalf("messages of a, b, c removed while \"early\" keeps %d of its older 150: not the oldest first (removed %v)",
			150-removed["early"], removed)
	}
	if removed["early"]+removed["a"]+removed["b"]+removed["c"] == 0 {
		t.Fatalf("nothing removed: the writes did not exceed the budget")
	}
	var newestRemoved int64
	for _, r := range rooms[1:] {
		if removed[r] > 0 {
			newestRemoved = max(newestRemoved, acked[r][removed[r]-1].ts)
		}
	}
	for _, r := range rooms[1:] {
		older := 0
		for _, m := range kept[r] {
			if m.ts < newestRemoved {
				older++
			}
		}
		if older > 153/10+2 {
			t.Fatalf("%s keeps %d messages older than the newest one removed from a, b or c: not the oldest first (removed %v)",
				r, older, removed)
		}
	}
	for _, r := range rooms {
		want := acked[r][len(acked[r])-1].seq + 1
		if a := durAck(t, alice.SendText(r, "after the budget "+r)); a.seq != want {
			t.Fatalf("send to %s after the budget's removals: seq %d, want %d", r, a.seq, want)
		}
	}
}

// TestDurableResumeAtRetentionEdge: a resume whose since is right at the
// edge of what retention keeps, while the room is being written (each
// commit with --history-keep 50 removes its oldest messages), is either
// recovered with exactly the messages after since, or not recovered. It
// must never be recovered with messages missing: the client would take
// the gap for "nothing missed".
//
// It found that Range decided completeness from the room's in-memory
// bounds and then scanned in a transaction of its own, which could already
// see a removal (bbolt readers see a commit once its meta page is
// written): now the scan decides, and removals raise the bounds first.
func TestDurableResumeAtRetentionEdge(t *testing.T) {
	p := startDurable(t, t.TempDir(), "--history-keep", "50")
	room := "edge"
	b := newBurster(t, p.addr, "alice", []string{room}, 16)
	bob := dialNode(t, p.addr, "bob")
	j := bob.Join(room)
	epoch, latest := j.Str("epoch"), j.Num("seq")
	b.run("edge", []string{room})
	tries, recovered := 0, 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		since := uint64(0)
		if latest > 50 {
			since = latest - 50
		}
		j := durResume(t, bob, room, since, epoch)
		tries++
		latest = j.Num("seq")
		if j["recovered"] != true {
			continue
		}
		recovered++
		msgs := durMessages(t, j)
		ok := uint64(len(msgs)) == j.Num("seq")-since
		for i := 0; ok && i < len(msgs); i++ {
			ok = msgs[i].seq == since+1+uint64(i)
		}
		if !ok {
			var seqs []uint64
			for _, m := range msgs {
				seqs = append(seqs, m.seq)
			}
			t.Fatalf("resume %d since %d: recovered true at seq %d with messages %v, want exactly %d..%d",
				tries, since, j.Num("seq"), seqs, since+1, j.Num("seq"))
		}
	}
	t.Logf("%d resumes at the edge of --history-keep while writing: %d recovered, all complete", tries, recovered)
}
