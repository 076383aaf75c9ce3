package web_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The page's layout: the page is the viewport, and only the message list
// (or the sidebar) scrolls.

// inViewJS defines inView(el, what, bad): el's box lies inside the
// viewport (and has a size), or a complaint is added to bad.
const inViewJS = `const inView = (el, what, bad) => {
	if (!el) { bad.push(what + " is missing"); return; }
	const r = el.getBoundingClientRect();
	if (r.height === 0 || r.width === 0 || r.top < 0 || r.left < 0 || r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5)
		bad.push(what + " is at " + [r.left, r.top, r.right, r.bottom].map(Math.round) + " in a " + innerWidth + "x" + innerHeight + " viewport");
};`

// layoutJS gives "" when the header is at the top, the composer and the
// newest message (inside the list's visible part) are in view, and the
// page itself scrolls neither way.
const layoutJS = `(() => {
	` + inViewJS + `
	const bad = [];
	const header = document.querySelector("header");
	inView(header, "the header", bad);
	if (header.getBoundingClientRect().top !== 0) bad.push("the header is not at the top");
	inView(document.getElementById("text"), "the composer's input", bad);
	inView(document.getElementById("send"), "the Send button", bad);
	inView(document.getElementById("error"), "the error line", bad);
	const list = document.getElementById("messages");
	const all = list.querySelectorAll(".msg");
	const newest = all[all.length - 1];
	inView(newest, "the newest message", bad);
	if (newest) {
		const l = list.getBoundingClientRect(), r = newest.getBoundingClientRect();
		if (r.top < l.top - 0.5 || r.bottom > l.bottom + 0.5) bad.push("the newest message is scrolled out of the list");
	}
	const se = document.scrollingElement;
	if (se.scrollHeight > se.clientHeight) bad.push("the page scrolls: " + se.scrollHeight + " > " + se.clientHeight);
	if (se.scrollWidth > se.clientWidth) bad.push("the page scrolls sideways: " + se.scrollWidth + " > " + se.clientWidth);
	if (list.scrollHeight <= list.clientHeight) bad.push("the list does not scroll (" + all.length + " messages)");
	return bad.join("; ");
})()`

// sidebarJS gives "" when the sidebar shows, with every heading and the
// DM form's button whole, inside it and inside the viewport.
const sidebarJS = `(() => {
	` + inViewJS + `
	const bad = [];
	const nav = document.getElementById("side");
	inView(nav, "the sidebar", bad);
	const n = nav.getBoundingClientRect();
	for (const el of [...nav.querySelectorAll("h2"), document.getElementById("dm-send")]) {
		const what = JSON.stringify(el.textContent);
		inView(el, what, bad);
		const r = el.getBoundingClientRect();
		if (r.top < n.top || r.bottom > n.bottom || r.left < n.left || r.right > n.right) bad.push(what + " is cut off by the sidebar");
		if (el.scrollWidth > el.clientWidth) bad.push(what + " is cut off on the right");
	}
	return bad.join("; ");
})()`

// TestLayoutScrollsTheListOnly: with 200 messages in the room, at a
// laptop's 1280x800 and a phone's 375x740, the header stays at the top,
// the composer and the newest message stay in view and the page itself
// does not scroll; scrolled up, a new message shows the "new messages"
// button, which scrolls down. At the phone's width the login form keeps
// a margin and the sidebar (a drawer there) shows its headings whole.
func TestLayoutScrollsTheListOnly(t *testing.T) {
	srv := startNode(t, withAPI)
	base := "http://" + srv.Addr()
	p := newTab(t, browser(t), "layout")

	p.run(chromedp.EmulateViewport(375, 740), chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("name")))
	p.check("the login form at 375 px", `(() => {
		const r = document.getElementById("login").getBoundingClientRect();
		return r.left >= 12 && innerWidth - r.right >= 12 ? "" : "the login form spans " + r.left + "-" + r.right + " of " + innerWidth + " px";
	})()`)
	p.login(base, "lee")
	for i := 1; i <= 200; i++ {
		text := fmt.Sprint("message ", i)
		if i%10 == 0 {
			text += ": " + strings.Repeat("a longer line that wraps on a phone ", 4)
		}
		publish(t, srv, "general", "feed", text)
	}
	p.wait(`document.querySelectorAll("#messages .msg").length === 200`)
	p.check("at 375x740", layoutJS)

	// The sidebar, a drawer at this width, opens from the header.
	p.run(chromedp.Click(chromedp.ID("menu")))
	p.check("the sidebar at 375x740", sidebarJS)
	p.run(chromedp.KeyEvent(kb.Escape))
	p.wait(`getComputedStyle(document.getElementById("side")).display === "none"`)
	p.check("at 375x740, the sidebar closed", layoutJS)

	p.run(chromedp.EmulateViewport(1280, 800))
	p.check("at 1280x800", layoutJS)
	p.check("the sidebar at 1280x800", sidebarJS)

	// Scrolled up, a new message does not move the list but shows the
	// button; the button scrolls down to it.
	if !evalIn[bool](p, `new Promise((resolve) => {
		const l = document.getElementById("messages");
		l.addEventListener("scroll", () => resolve(true), { once: true });
		l.scrollTop = 0;
	})`, chromedp.EvalAwaitPromise) {
		t.Fatal("the list did not scroll up")
	}
	publish(t, srv, "general", "feed", "while scrolled up")
	p.wait(shows("while scrolled up"))
	p.wait(`!document.getElementById("new-msgs").hidden && document.getElementById("messages").scrollTop === 0`)
	p.run(chromedp.Click(chromedp.ID("new-msgs")))
	p.wait(`document.getElementById("new-msgs").hidden`)
	p.check("after the new-messages button", layoutJS)

	// At the bottom again, new messages keep it there, with no button.
	publish(t, srv, "general", "feed", "at the bottom")
	p.wait(shows("at the bottom"))
	p.check("with the newest message", layoutJS)
	if !evalIn[bool](p, `document.getElementById("new-msgs").hidden`) {
		t.Fatal("the new-messages button shows while the list is at the bottom")
	}
}
