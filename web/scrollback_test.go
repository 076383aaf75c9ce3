package web_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/chatgw/gateway/gateway"
)

// Scrolling back: the list loads a room's older messages when scrolled to
// its top.

// historyHookJS records the page's history requests and their replies in
// window.hist ({dir: "out", id, room, before, limit} and {dir: "in", id,
// room, n, error}), in the order they went and came (a request lost with
// its connection comes back as an error). Per room,
// failNext[room] requests are answered with an unavailable error (not
// sent), shift[room] is added to the before of those sent (a server
// answering with messages the page shows already), and they go hold[room]
// ms late.
const historyHookJS = `(() => {
	window.hist = [];
	window.failNext = {};
	window.shift = {};
	window.hold = {};
	const rooms = {};
	const send = WebSocket.prototype.send;
	WebSocket.prototype.send = function (d) {
		const f = JSON.parse(d);
		if (f.type !== "history") return send.call(this, d);
		rooms[f.id] = f.room;
		hist.push({ dir: "out", id: f.id, room: f.room, before: f.before, limit: f.limit });
		if (!this.out) {
			const out = (this.out = new Set());
			const reply = (id, n, error) => {
				if (!out.delete(id)) return;
				hist.push({ dir: "in", id, room: rooms[id], n, error });
			};
			this.addEventListener("message", (ev) => {
				const r = JSON.parse(ev.data);
				if (r.type === "history" || r.type === "error") reply(r.id, (r.messages || []).length, r.type === "error");
			});
			this.addEventListener("close", () => [...out].forEach((id) => reply(id, 0, true)));
		}
		this.out.add(f.id);
		if (failNext[f.room] > 0) {
			failNext[f.room]--;
			setTimeout(() => {
				this.out.delete(f.id);
				hist.push({ dir: "in", id: f.id, room: f.room, n: 0, error: true });
				this.onmessage({ data: JSON.stringify({ type: "error", id: f.id, code: "unavailable", message: "history store unreachable" }) });
			}, 100);
			return;
		}
		if (shift[f.room]) d = JSON.stringify({ ...f, before: f.before + shift[f.room] });
		if (hold[f.room]) return void setTimeout(() => send.call(this, d), hold[f.room]);
		return send.call(this, d);
	};
	// What the scrollback's line said, in order.
	window.olderLog = [];
	const line = document.getElementById("older");
	new MutationObserver(() => olderLog.push(document.getElementById("older-text").textContent)).observe(line, { childList: true, characterData: true, subtree: true });
	return true;
})()`

// scrollListJS(y) scrolls the list to y and resolves on the scroll event
// (at once when it is there already), with the topmost message then:
// {seq, y}, y its top less the list's scrollTop.
func scrollListJS(y int) string {
	return fmt.Sprintf(`new Promise((resolve) => {
		const l = document.getElementById("messages");
		const top = () => {
			const li = l.querySelector(".msg");
			return { seq: Number(li.dataset.seq), y: li.offsetTop - l.scrollTop };
		};
		if (Math.abs(l.scrollTop - %[1]d) < 1) return resolve(top());
		l.addEventListener("scroll", () => resolve(top()), { once: true });
		l.scrollTop = %[1]d;
	})`, y)
}

type topMsg struct {
	Seq int     `json:"seq"`
	Y   float64 `json:"y"`
}

// shownSeqsJS is the seqs of the messages the list shows, in order.
const shownSeqsJS = `[...document.querySelectorAll("#messages .msg")].map(li => Number(li.dataset.seq))`

// olderTextJS is what the scrollback's line says.
const olderTextJS = `document.getElementById("older-text").textContent`

func msgCount(n int) string {
	return fmt.Sprintf(`document.querySelectorAll("#messages .msg").length === %d`, n)
}

// wantSeqs fails unless the list shows exactly the seqs from..to, once
// each, ascending.
func wantSeqs(t *testing.T, p *tab, from, to int) {
	t.Helper()
	got := evalIn[[]int](p, shownSeqsJS)
	ok := len(got) == to-from+1
	for i := 0; ok && i < len(got); i++ {
		ok = got[i] == from+i
	}
	if !ok {
		t.Fatalf("%s shows seqs %v, want %d..%d once each, ascending", p.name, got, from, to)
	}
}

type histEvent struct {
	Dir    string `json:"dir"`
	ID     string `json:"id"`
	Room   string `json:"room"`
	Before int    `json:"before"`
	Limit  int    `json:"limit"`
	N      int    `json:"n"`
	Error  bool   `json:"error"`
}

// histOf returns the history requests of room (as they went), failing the
// test when two requests of the room were out at once.
func histOf(t *testing.T, p *tab, room string) (out []histEvent) {
	t.Helper()
	all := evalIn[[]histEvent](p, `hist`)
	inFlight := 0
	for _, h := range all {
		if h.Room != room {
			continue
		}
		if h.Dir == "out" {
			inFlight++
			out = append(out, h)
			if inFlight > 1 {
				t.Fatalf("%s: two history requests of %s out at once: %+v", p.name, room, all)
			}
		} else {
			inFlight--
		}
	}
	return out
}

// joinRoom joins room from the sidebar's form and waits until the page
// shows it.
func joinRoom(p *tab, room string) {
	p.t.Helper()
	p.run(chromedp.SendKeys(chromedp.ID("join-room"), room+kb.Enter))
	p.wait(`document.getElementById("room-name").textContent === "#` + room + `"`)
}

// TestScrollbackLoadsOlderMessages: a room with 180 messages; the page
// joins it with the newest 50. Scrolled to the top (with the keyboard's
// Home once), it loads 50 older ones at a time, before the oldest shown,
// one request at a time, showing "loading older messages…" meanwhile and
// keeping the message that was at the top where it was; the reply with
// fewer than 50 ends it with "beginning of the history", and no more
// requests go. Every message then shows once, in seq order. In a second
// room, the first request fails (an error line; the next scroll up
// retries) and the server answers with messages the page shows already:
// they show once.
func TestScrollbackLoadsOlderMessages(t *testing.T) {
	srv := startNode(t, func(c *gateway.Config) { withAPI(c); c.HistorySize = 500 })
	base := "http://" + srv.Addr()
	for i := 1; i <= 180; i++ {
		publish(t, srv, "back", "feed", fmt.Sprint("back ", i))
	}
	for i := 1; i <= 120; i++ {
		publish(t, srv, "flaky", "feed", fmt.Sprint("flaky ", i))
	}
	p := newTab(t, browser(t), "reader")
	p.login(base, "reader")
	evalIn[bool](p, historyHookJS)

	// The line is announced politely, and the list takes the keyboard.
	if !evalIn[bool](p, `(() => {
		const o = document.getElementById("older"), l = document.getElementById("messages");
		return (o.getAttribute("aria-live") === "polite" || o.getAttribute("role") === "status") && l.tabIndex === 0;
	})()`) {
		t.Fatal("the scrollback's line is not a polite live region, or the list is not focusable")
	}

	joinRoom(p, "back")
	p.wait(msgCount(50))
	wantSeqs(t, p, 131, 180)
	if !evalIn[bool](p, `(() => { const l = document.getElementById("messages"); return l.scrollHeight - l.scrollTop - l.clientHeight < 2; })()`) {
		t.Fatal("the list is not at the bottom after joining")
	}
	if h := histOf(t, p, "back"); len(h) != 0 {
		t.Fatalf("history asked for before scrolling up: %+v", h)
	}

	// Step 1, scrolled to the top: the anchor holds. The request goes
	// late, and scrolling up on meanwhile (the wheel, the keys) asks no
	// more.
	evalIn[bool](p, `(() => { hold.back = 400; return true; })()`)
	before := evalIn[topMsg](p, scrollListJS(0), chromedp.EvalAwaitPromise)
	if before.Seq != 131 {
		t.Fatalf("the topmost message is seq %d, want 131", before.Seq)
	}
	evalIn[bool](p, `(() => {
		const l = document.getElementById("messages");
		l.dispatchEvent(new WheelEvent("wheel", { deltaY: -100 }));
		l.dispatchEvent(new KeyboardEvent("keydown", { key: "PageUp", bubbles: true }));
		l.dispatchEvent(new Event("scroll"));
		hold.back = 0;
		return true;
	})()`)
	p.wait(msgCount(100) + ` && ` + olderTextJS + ` === ""`)
	wantSeqs(t, p, 81, 180)
	after := evalIn[float64](p, `(() => {
		const l = document.getElementById("messages");
		return document.querySelector('#messages .msg[data-seq="131"]').offsetTop - l.scrollTop;
	})()`)
	if d := math.Abs(after - before.Y); d > 3 {
		t.Fatalf("the message that was at the top (seq 131) moved by %.1f px (from %.1f to %.1f) as older ones came", d, before.Y, after)
	}
	if log := evalIn[[]string](p, `olderLog`); len(log) == 0 || log[0] != "loading older messages…" {
		t.Fatalf("the line said %q while loading, want \"loading older messages…\" first", log)
	}

	// Step 2, with the keyboard: Home in the list reaches the top.
	p.run(chromedp.Focus(chromedp.ID("messages")), chromedp.KeyEvent(kb.Home))
	p.wait(msgCount(150) + ` && ` + olderTextJS + ` === ""`)
	wantSeqs(t, p, 31, 180)
	// The view stays near where Home took it (81 in view), neither jumping
	// to the new top nor to the bottom.
	if !evalIn[bool](p, `(() => {
		const l = document.getElementById("messages").getBoundingClientRect();
		const r = document.querySelector('#messages .msg[data-seq="81"]').getBoundingClientRect();
		return r.top >= l.top - 1 && r.bottom <= l.bottom + 1;
	})()`) {
		t.Fatal("after Home, the message that was at the top (seq 81) is out of view")
	}

	// Step 3: the last 30, and the beginning of the history.
	evalIn[topMsg](p, scrollListJS(0), chromedp.EvalAwaitPromise)
	p.wait(olderTextJS + ` === "beginning of the history"`)
	wantSeqs(t, p, 1, 180)
	var befores []string
	for _, h := range histOf(t, p, "back") {
		befores = append(befores, fmt.Sprintf("before %d limit %d", h.Before, h.Limit))
	}
	if want := []string{"before 131 limit 50", "before 81 limit 50", "before 31 limit 50"}; strings.Join(befores, ", ") != strings.Join(want, ", ") {
		t.Fatalf("history requests %q, want %q", befores, want)
	}

	// At the beginning, scrolling up again asks for nothing.
	evalIn[topMsg](p, scrollListJS(200), chromedp.EvalAwaitPromise)
	evalIn[topMsg](p, scrollListJS(0), chromedp.EvalAwaitPromise)
	p.run(chromedp.Focus(chromedp.ID("messages")), chromedp.KeyEvent(kb.PageUp))
	time.Sleep(300 * time.Millisecond)
	if h := histOf(t, p, "back"); len(h) != 3 {
		t.Fatalf("history asked for again at the beginning of the history: %+v", h)
	}
	wantSeqs(t, p, 1, 180)

	// The other room: an error first, then replies overlapping what shows.
	evalIn[bool](p, `(() => { failNext.flaky = 1; shift.flaky = 5; return true; })()`)
	joinRoom(p, "flaky")
	p.wait(msgCount(50))
	wantSeqs(t, p, 71, 120)
	top := evalIn[topMsg](p, scrollListJS(0), chromedp.EvalAwaitPromise)
	p.wait(olderTextJS + `.startsWith("could not load older messages: history store unreachable") && !document.getElementById("older-retry").hidden`)
	wantSeqs(t, p, 71, 120)
	// The error line does not move the messages either.
	if y := evalIn[float64](p, `(() => { const l = document.getElementById("messages"); return l.querySelector(".msg").offsetTop - l.scrollTop; })()`); math.Abs(y-top.Y) > 1 {
		t.Fatalf("the error line moved the topmost message from %.1f to %.1f px", top.Y, y)
	}
	// The next scroll up retries.
	evalIn[topMsg](p, scrollListJS(200), chromedp.EvalAwaitPromise)
	evalIn[topMsg](p, scrollListJS(0), chromedp.EvalAwaitPromise)
	p.wait(msgCount(95) + ` && ` + olderTextJS + ` === ""`)
	wantSeqs(t, p, 26, 120)
	evalIn[topMsg](p, scrollListJS(0), chromedp.EvalAwaitPromise)
	p.wait(olderTextJS + ` === "beginning of the history"`)
	wantSeqs(t, p, 1, 120)
	if h := histOf(t, p, "flaky"); len(h) != 3 || h[0].Before != 71 || h[1].Before != 71 || h[2].Before != 26 {
		t.Fatalf("history requests of flaky: %+v, want before 71 (failed), 71 and 26", h)
	}

	// Back in the first room, all of it shows again, at the bottom.
	p.run(chromedp.Click(chromedp.CSS(`#rooms button[data-room="back"]`)))
	p.wait(`document.getElementById("room-name").textContent === "#back"`)
	wantSeqs(t, p, 1, 180)
	p.check("back in #back", layoutJS)
}

// TestScrollbackStopsWhereHistoryDoes: the node keeps the last 70 messages
// of a room of 100. Scrolled back once, the page gets 20 (fewer than
// asked): the beginning of what the server has, though not seq 1; it
// shows "beginning of the history" and asks no more.
func TestScrollbackStopsWhereHistoryDoes(t *testing.T) {
	srv := startNode(t, func(c *gateway.Config) { withAPI(c); c.HistorySize = 70 })
	for i := 1; i <= 100; i++ {
		publish(t, srv, "general", "feed", fmt.Sprint("message ", i))
	}
	p := newTab(t, browser(t), "reader")
	p.login("http://"+srv.Addr(), "reader")
	evalIn[bool](p, historyHookJS)
	p.wait(msgCount(50))
	wantSeqs(t, p, 51, 100)
	evalIn[topMsg](p, scrollListJS(0), chromedp.EvalAwaitPromise)
	p.wait(olderTextJS + ` === "beginning of the history"`)
	wantSeqs(t, p, 31, 100)
	evalIn[topMsg](p, scrollListJS(200), chromedp.EvalAwaitPromise)
	evalIn[topMsg](p, scrollListJS(0), chromedp.EvalAwaitPromise)
	time.Sleep(300 * time.Millisecond)
	if h := histOf(t, p, "general"); len(h) != 1 || h[0].Before != 51 {
		t.Fatalf("history requests %+v, want one, before 51", h)
	}
}

// TestScrollbackAfterHistoryReset: a scrollback request is out when the
// node (memory store) restarts: it fails with the connection, and the
// error shows. The room comes back under a new epoch: the page resets its
// scrollback (the error line goes), and asks nothing older for what it
// shows above the marker, which is gone on the server.
func TestScrollbackAfterHistoryReset(t *testing.T) {
	cfg := func(c *gateway.Config) { withAPI(c); c.HistorySize = 500 }
	srv := startNode(t, cfg)
	addr := srv.Addr()
	for i := 1; i <= 120; i++ {
		publish(t, srv, "general", "feed", fmt.Sprint("message ", i))
	}
	p := newTab(t, browser(t), "reader")
	p.login("http://"+addr, "reader")
	evalIn[bool](p, historyHookJS)
	p.wait(msgCount(50))
	evalIn[bool](p, `(() => { hold.general = 60000; return true; })()`)
	evalIn[topMsg](p, scrollListJS(0), chromedp.EvalAwaitPromise)
	p.wait(olderTextJS + ` === "loading older messages…"`)

	stopNode(srv)
	p.wait(olderTextJS + `.startsWith("could not load older messages")`)
	startNodeAt(t, addr, cfg)
	p.waitState("online")
	p.wait(`document.querySelector("#messages .marker") !== null && ` + olderTextJS + ` === ""`)

	evalIn[topMsg](p, scrollListJS(200), chromedp.EvalAwaitPromise)
	evalIn[topMsg](p, scrollListJS(0), chromedp.EvalAwaitPromise)
	time.Sleep(300 * time.Millisecond)
	if h := histOf(t, p, "general"); len(h) != 1 {
		t.Fatalf("history requests %+v, want only the one before the restart", h)
	}
	want := []string{}
	for i := 71; i <= 120; i++ {
		want = append(want, fmt.Sprint(i, " message ", i))
	}
	p.wantEntries(append(want, "reset")...)
}
