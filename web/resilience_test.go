package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// The page when the node goes away: a history reset is shown, messages
// typed meanwhile show as pending, and the presence list as stale.

// TestHistoryResetIsShown: the node (memory store) restarts, so every room
// and inbox comes back under a new epoch with no history. Both pages keep
// what they showed, add a marker line in the room and in the DM inbox, and
// go on with the new epoch's messages (seq 1 again, not taken for the old
// seq 1).
func TestHistoryResetIsShown(t *testing.T) {
	srv := startNode(t, nil)
	addr := srv.Addr()
	base := "http://" + addr
	b := browser(t)
	alice, bob := newTab(t, b, "alice"), newTab(t, b, "bob")
	alice.login(base, "alice")
	bob.login(base, "bob")
	bob.say("before 1")
	alice.wait(shows("before 1"))
	alice.say("before 2")
	bob.run(chromedp.SendKeys(chromedp.ID("dm-to"), "alice"), chromedp.SendKeys(chromedp.ID("dm-text"), "dm before"),
		chromedp.Click(chromedp.ID("dm-send")))
	for _, p := range []*tab{alice, bob} {
		p.wait(shows("before 2"))
		p.wantEntries("1 before 1", "2 before 2")
	}
	alice.wait(`document.querySelector('#rooms button[data-room="@alice"] .unread') !== null`)

	stopNode(srv)
	for _, p := range []*tab{alice, bob} {
		p.waitState("reconnecting")
	}
	startNodeAt(t, addr, nil)
	for _, p := range []*tab{alice, bob} {
		p.waitState("online")
		p.wait(`document.querySelector("#messages .marker") !== null`)
	}
	bob.say("after 1")
	for _, p := range []*tab{alice, bob} {
		p.wait(shows("after 1"))
		p.wantEntries("1 before 1", "2 before 2", "reset", "1 after 1")
		if text := evalIn[string](p, `document.querySelector("#messages .marker").textContent`); text != "history was reset on the server" {
			t.Fatalf("%s: the marker says %q", p.name, text)
		}
	}

	// The DM inbox too (the DM form keeps its addressee).
	bob.run(chromedp.SendKeys(chromedp.ID("dm-text"), "dm after"), chromedp.Click(chromedp.ID("dm-send")))
	for _, p := range []*tab{alice, bob} {
		p.run(chromedp.Click(chromedp.CSS(`#rooms button[data-room="@` + p.name + `"]`)))
		p.wait(shows("dm after"))
		p.wantEntries("1 dm before", "reset", "1 dm after")
	}
}

// TestOfflineSendShowsPending: with the node gone, a message sent shows at
// once, greyed as "sending…", and the "online here" list is greyed out;
// once the node is back the message is sent (the client re-sends it with
// its key) and shows exactly once, and the list is current again.
func TestOfflineSendShowsPending(t *testing.T) {
	srv := startNode(t, nil)
	addr := srv.Addr()
	base := "http://" + addr
	p := newTab(t, browser(t), "olga")
	p.login(base, "olga")
	p.wait(`document.getElementById("online").textContent === "olga" && !document.getElementById("online").classList.contains("stale")`)

	stopNode(srv)
	p.waitState("reconnecting")
	p.wait(`document.getElementById("online").classList.contains("stale")`)
	p.say("typed offline")
	p.wait(`(() => {
		const li = [...document.querySelectorAll("#messages .msg")].find(li => li.querySelector(".text").textContent === "typed offline");
		return li && li.classList.contains("pending") && li.querySelector(".status").textContent === "sending…" &&
			getComputedStyle(li).opacity < 1 && document.getElementById("text").value === "";
	})()`)
	if !evalIn[bool](p, `getComputedStyle(document.getElementById("online")).opacity < 1`) {
		t.Fatal("the presence list is not greyed out while reconnecting")
	}

	startNodeAt(t, addr, nil)
	p.waitState("online")
	p.wait(`document.querySelector("#messages .pending") === null && !document.getElementById("online").classList.contains("stale")`)
	p.say("back online")
	p.wait(shows("back online"))
	p.wantEntries("1 typed offline", "2 back online")
	if op := evalIn[string](p, `getComputedStyle(document.querySelector("#messages .msg")).opacity`); op != "1" {
		t.Fatalf("the message sent is still greyed: opacity %s", op)
	}
	p.wait(`document.getElementById("online").textContent === "olga"`)
}
