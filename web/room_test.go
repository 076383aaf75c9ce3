package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// A room's conversation: typing after a send, the empty room's hint.

// TestTypingAfterSend: alice types, sends, types on at once and pauses.
// Her page sends a typing event right after the send (the throttle is
// reset on send), and one more when the server's throttle (one typing per
// user and room every 2 s, docs/protocol.md) lets it through, so bob sees
// "alice is typing…" again within 1 s of that: at most 3 s after her first
// typing event. (Within 1 s of the send itself would need the server to
// forward a typing right after a send; it drops it.)
func TestTypingAfterSend(t *testing.T) {
	srv := startNode(t, nil)
	base := "http://" + srv.Addr()
	b := browser(t)
	alice, bob := newTab(t, b, "alice"), newTab(t, b, "bob")
	alice.login(base, "alice")
	bob.login(base, "bob")
	// Alice's frames and bob's typing line, with when (the tabs share
	// the clock).
	evalIn[bool](alice, `(() => {
		window.sent = [];
		const send = WebSocket.prototype.send;
		WebSocket.prototype.send = function (d) { sent.push({ at: Date.now(), f: JSON.parse(d) }); return send.call(this, d); };
		return true;
	})()`)
	evalIn[bool](bob, `(() => {
		window.typingLog = [];
		const el = document.getElementById("typing");
		new MutationObserver(() => typingLog.push({ at: Date.now(), text: el.textContent })).observe(el, { childList: true, characterData: true, subtree: true });
		return true;
	})()`)

	alice.run(chromedp.SendKeys(chromedp.ID("text"), "hi"))
	bob.wait(`document.getElementById("typing").textContent === "alice is typing…"`)
	alice.run(chromedp.SendKeys(chromedp.ID("text"), kb.Enter+"s"))
	// The message clears the line; a typing event after it shows it again.
	bob.wait(shows("hi") + ` && document.getElementById("typing").textContent === "alice is typing…"`)

	first := evalIn[float64](alice, `sent.find(s => s.f.type === "typing").at`)
	again := evalIn[float64](bob, `(() => {
		const cleared = typingLog.findIndex(e => e.text === "");
		return typingLog.slice(cleared).find(e => e.text === "alice is typing…").at;
	})()`)
	t.Logf("bob saw alice typing again %.0f ms after her first typing event", again-first)
	if again-first > 3000 {
		t.Fatalf("bob saw alice typing again %.0f ms after her first typing event, over 2 s (the server's throttle) + 1 s", again-first)
	}
	gap := evalIn[float64](alice, `(() => {
		const i = sent.findIndex(s => s.f.type === "send");
		const typing = sent.slice(i + 1).find(s => s.f.type === "typing");
		return i < 0 || !typing ? -1 : typing.at - sent[i].at;
	})()`)
	if gap < 0 || gap > 500 {
		t.Fatalf("alice's page sent no typing event within 500 ms of the send (%v ms)", gap)
	}
}

// TestEmptyRoomHint: a room with no messages says so, until the first.
func TestEmptyRoomHint(t *testing.T) {
	srv := startNode(t, nil)
	p := newTab(t, browser(t), "erin")
	p.login("http://"+srv.Addr(), "erin")
	p.run(chromedp.SendKeys(chromedp.ID("join-room"), "quiet"+kb.Enter))
	p.wait(`document.getElementById("room-name").textContent === "#quiet"`)
	p.wait(`(() => { const e = document.getElementById("empty");
		return !e.hidden && e.textContent === "No messages yet — say hello" && e.getBoundingClientRect().height > 0; })()`)
	p.say("hello")
	p.wait(shows("hello") + ` && document.getElementById("empty").hidden`)
	p.settled()
	if !evalIn[bool](p, `document.getElementById("empty").hidden`) {
		t.Fatal("the hint came back after the first message")
	}
}
