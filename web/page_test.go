package web_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/internal/gatewaytest"
)

// These tests drive Debian's chromium, headless, through chromedp: the
// page and client.js in a real browser against a real node.

func chromiumPath(t *testing.T) string {
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("chromium is not installed (scripts/test.sh installs it with apt-get)")
	return ""
}

// browser starts one headless chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(640, 560),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// tab is one page of the browser, failing the test on any alert dialog
// (an injected script would raise one).
type tab struct {
	t    *testing.T
	ctx  context.Context
	name string
}

func newTab(t *testing.T, b context.Context, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: opening a tab: %v", name, err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			t.Errorf("%s: a dialog opened (%q): user text ran as script", name, ev.Message)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			t.Logf("%s: console %s: %s", name, m.Type, m.Text)
		}
	}()
	return &tab{t: t, ctx: ctx, name: name}
}

func (p *tab) run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// wait polls a JavaScript expression until it is truthy.
func (p *tab) wait(expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		dctx, dcancel := context.WithTimeout(p.ctx, 2*time.Second)
		defer dcancel()
		state, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.getElementById("state").textContent`))
		msgs, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.getElementById("messages").innerText`))
		p.t.Fatalf("%s: waiting for %s: %v (state %q, messages %q)", p.name, expr, err, state, msgs)
	}
}

func evalIn[T any](p *tab, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, expr, err)
	}
	return v
}

// login opens the page and connects as user; the page joins "general".
func (p *tab) login(base, user string) {
	p.t.Helper()
	p.run(chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), user), chromedp.Click(chromedp.ID("connect")))
	p.wait(`document.getElementById("state").textContent === "online as ` + user + `"`)
	p.wait(`document.getElementById("room-name").textContent === "#general"`)
	p.wait(`getComputedStyle(document.getElementById("login")).display === "none"`)
}

func (p *tab) say(text string) {
	p.t.Helper()
	p.run(chromedp.SendKeys(chromedp.ID("text"), text+kb.Enter))
}

// texts returns the shown messages as "seq text" lines.
func (p *tab) texts() []string {
	return evalIn[[]string](p, `[...document.querySelectorAll("#messages .msg")].map(li => li.dataset.seq + " " + li.querySelector(".text").textContent)`)
}

func jsString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func startNode(t *testing.T, mutate func(*gateway.Config)) *gateway.Server {
	srv, _ := gatewaytest.Start(t, mutate)
	return srv
}

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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = srv.Shutdown(ctx)
	cancel()
	for _, p := range []*tab{alice, bob} {
		p.wait(`document.getElementById("state").textContent.startsWith("reconnecting")`)
	}
	// Typed while disconnected: held by the client, sent once it is back.
	for i := 1; i <= 3; i++ {
		bob.say(fmt.Sprint("during ", i))
	}
	alice.say("alice during")
	time.Sleep(500 * time.Millisecond)
	startNode(t, func(c *gateway.Config) { cfg(c); c.Addr = addr })
	for _, p := range []*tab{alice, bob} {
		p.wait(`document.getElementById("state").textContent.startsWith("online")`)
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
		p.wait(fmt.Sprintf(`document.querySelectorAll("#messages .msg").length >= %d`, len(want)))
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

// screenshot writes the two tabs side by side as one PNG.
func screenshot(t *testing.T, path string, tabs ...*tab) {
	var imgs []image.Image
	for _, p := range tabs {
		buf := evalShot(p)
		img, err := png.Decode(bytes.NewReader(buf))
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	const gap = 16
	w, h := 0, 0
	for _, img := range imgs {
		w += img.Bounds().Dx() + gap
		h = max(h, img.Bounds().Dy())
	}
	out := image.NewRGBA(image.Rect(0, 0, w-gap, h))
	draw.Draw(out, out.Bounds(), image.NewUniform(image.White), image.Point{}, draw.Src)
	x := 0
	for _, img := range imgs {
		draw.Draw(out, image.Rect(x, 0, x+img.Bounds().Dx(), img.Bounds().Dy()), img, img.Bounds().Min, draw.Src)
		x += img.Bounds().Dx() + gap
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, out); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot written to %s", path)
}

func evalShot(p *tab) []byte {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	return buf
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
