package web_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/chatgw/gateway/gateway"
)

// The page's main paths: two pages talk, a restart loses nothing, a
// phone's width with the keyboard alone, --no-page.

func TestTwoPagesTalk(t *testing.T) {
	srv := startNode(t, nil)
	base := "http://" + srv.Addr()
	b := browser(t)
	alice, bob := newTab(t, b, "alice"), newTab(t, b, "bob")
	alice.login(base, "alice")
	bob.login(base, "bob")

	// Presence shows both, on both pages.
	for _, p := range []*tab{alice, bob} {
		p.wait(`document.getElementById("online").textContent.includes("alice") && document.getElementById("online").textContent.includes("bob")`)
	}

	// Typing shows on the other page, and clears when the message comes.
	alice.run(chromedp.SendKeys(chromedp.ID("text"), "hello b"))
	bob.wait(`document.getElementById("typing").textContent === "alice is typing…"`)
	alice.run(chromedp.SendKeys(chromedp.ID("text"), "ob"+kb.Enter))
	bob.wait(`[...document.querySelectorAll("#messages .text")].some(e => e.textContent === "hello bob")`)
	bob.wait(`document.getElementById("typing").textContent === ""`)
	alice.wait(`[...document.querySelectorAll("#messages .text")].some(e => e.textContent === "hello bob")`)

	// Read receipts: bob has the page open, so alice sees "seen by bob".
	alice.wait(`document.getElementById("seen").textContent === "seen by bob"`)

	// User text is text, never markup.
	const evil = `<img src=x onerror=alert(1)><b>bold</b>`
	bob.say(evil)
	for _, p := range []*tab{alice, bob} {
		p.wait(`[...document.querySelectorAll("#messages .text")].some(e => e.textContent === ` + jsString(evil) + `)`)
		if tags := evalIn[int](p, `document.querySelectorAll("#messages img, #messages b").length`); tags != 0 {
			t.Fatalf("%s: the message became %d elements", p.name, tags)
		}
	}

	// A DM: alice's page shows it under Direct messages.
	bob.run(chromedp.SendKeys(chromedp.ID("dm-to"), "alice"), chromedp.SendKeys(chromedp.ID("dm-text"), "just for you"),
		chromedp.Click(chromedp.ID("dm-send")))
	alice.wait(`document.querySelector('#rooms button[data-room="@alice"] .unread') !== null`)
	alice.run(chromedp.Click(chromedp.CSS(`#rooms button[data-room="@alice"]`)))
	alice.wait(`[...document.querySelectorAll("#messages .msg")].some(e => e.querySelector(".from").textContent === "bob" && e.querySelector(".text").textContent === "just for you")`)
	alice.run(chromedp.Click(chromedp.CSS(`#rooms button[data-room="general"]`)))
	alice.wait(`document.getElementById("room-name").textContent === "#general"`)

	for _, p := range []*tab{alice, bob} {
		got := p.texts()
		want := []string{"1 hello bob", "2 " + evil}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s shows %q, want %q", p.name, got, want)
		}
	}
	if path := os.Getenv("CHAT_SCREENSHOT"); path != "" {
		if !filepath.IsAbs(path) {
			// Relative to the repository's root, where the README runs
			// the command (go test runs in web/).
			path = filepath.Join("..", path)
		}
		alice.say("see you at 5")
		bob.say("sounds good, see you there")
		bob.wait(`document.querySelectorAll("#messages .msg").length === 4`)
		alice.wait(`document.getElementById("seen").textContent === "seen by bob"`)
		for _, p := range []*tab{alice, bob} {
			p.run(chromedp.EmulateViewport(760, 520), chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`), chromedp.Sleep(300*time.Millisecond))
		}
		screenshot(t, path, alice, bob)
	}
}

// TestReconnectShowsEveryMessageOnce: the gateway restarts (history in
// Redis, so it survives) while bob keeps sending and alice types too; after
// both pages reconnect, each shows every message exactly once, in seq
// order.
func TestReconnectShowsEveryMessageOnce(t *testing.T) {
	redisURL := startRedis(t)
	cfg := func(c *gateway.Config) { c.RedisURL = redisURL; c.Rate, c.Burst = 1000, 1000 }
	srv := startNode(t, cfg)
	addr := srv.Addr()
	base := "http://" + addr
	b := browser(t)
	alice, bob := newTab(t, b, "alice"), newTab(t, b, "bob")
	alice.login(base, "alice")
	bob.login(base, "bob")
	for i := 1; i <= 3; i++ {
		bob.say(fmt.Sprint("before ", i))
	}
	alice.wait(`document.querySelectorAll("#messages .msg").length === 3`)

	// The node goes away: both pages lose their connection.
	stopNode(srv)
	for _, p := range []*tab{alice, bob} {
		p.waitState("reconnecting")
	}
	// Typed while disconnected: held by the client, sent once it is back.
	for i := 1; i <= 3; i++ {
		bob.say(fmt.Sprint("during ", i))
	}
	alice.say("alice during")
	time.Sleep(500 * time.Millisecond)
	startNodeAt(t, addr, cfg)
	for _, p := range []*tab{alice, bob} {
		p.waitState("online")
	}
	for i := 1; i <= 3; i++ {
		bob.say(fmt.Sprint("after ", i))
	}
	want := map[string]bool{"alice during": true}
	for _, w := range []string{"before", "during", "after"} {
		for i := 1; i <= 3; i++ {
			want[fmt.Sprint(w, " ", i)] = true
		}
	}
	for _, p := range []*tab{alice, bob} {
		p.wait(fmt.Sprintf(`document.querySelectorAll("#messages .msg:not(.local)").length >= %d`, len(want)))
		time.Sleep(300 * time.Millisecond) // anything doubled would have arrived by now
		got := p.texts()
		if len(got) != len(want) {
			t.Fatalf("%s shows %d messages, want %d: %q", p.name, len(got), len(want), got)
		}
		seen := map[string]bool{}
		for i, line := range got {
			seq, text, _ := strings.Cut(line, " ")
			if seq != fmt.Sprint(i+1) || !want[text] || seen[text] {
				t.Fatalf("%s: line %d is %q (want seq %d, each message once): %q", p.name, i, line, i+1, got)
			}
			seen[text] = true
		}
	}
}

// TestPhoneWidthByKeyboard: at a phone's width nothing scrolls sideways,
// and the page is used with the keyboard alone: the name field has the
// focus, Enter connects, the message field then has the focus, Enter
// sends, Tab reaches the Send button.
func TestPhoneWidthByKeyboard(t *testing.T) {
	srv := startNode(t, nil)
	b := browser(t)
	p := newTab(t, b, "phone")
	p.run(chromedp.EmulateViewport(375, 700), chromedp.Navigate("http://"+srv.Addr()+"/"),
		chromedp.WaitVisible(chromedp.ID("name")))
	p.wait(`document.activeElement === document.getElementById("name")`)
	p.run(chromedp.KeyEvent("erin" + kb.Enter))
	p.wait(`document.getElementById("state").textContent === "online as erin" && document.activeElement === document.getElementById("text")`)
	p.run(chromedp.KeyEvent("from the keyboard" + kb.Enter))
	p.wait(`[...document.querySelectorAll("#messages .text")].some(e => e.textContent === "from the keyboard")`)
	p.run(chromedp.KeyEvent(kb.Tab))
	p.wait(`document.activeElement === document.getElementById("send")`)
	if w := evalIn[int](p, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Fatalf("the page is %d px wider than a 375 px screen", w)
	}
	if !evalIn[bool](p, `(() => { const r = document.getElementById("composer").getBoundingClientRect(); return r.width > 300 && r.right <= window.innerWidth; })()`) {
		t.Fatal("the message field does not fit a phone's width")
	}
}

// TestNoPage: --no-page leaves / and /client.js unserved.
func TestNoPage(t *testing.T) {
	srv := startNode(t, func(c *gateway.Config) { c.NoPage = true })
	for _, path := range []string{"/", "/client.js"} {
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s with --no-page: %s", path, resp.Status)
		}
	}
	on := startNode(t, nil)
	resp, err := http.Get("http://" + on.Addr() + "/client.js")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("GET /client.js: %s %v", resp.Status, resp.Header)
	}
}
