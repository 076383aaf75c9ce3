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

// What the browser tests share. They drive Debian's chromium, headless,
// through chromedp: the page and client.js in a real browser against a
// real node.

func chromiumPath(t *testing.T) string {
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("chromium is not installed (scripts/test.sh installs it with apt-get)")
	return ""
}

// browser starts one headless chromium for the test, its window a laptop's
// screen (tests of other sizes emulate theirs).
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
		chromedp.WindowSize(1280, 800),
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

// check polls a JavaScript expression that gives "" when all is well and
// otherwise what is wrong, until it gives "" (failing with the last
// complaint).
func (p *tab) check(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("("+expr+`) === ""`, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		p.t.Fatalf("%s: %s: %s", p.name, what, evalIn[string](p, expr))
	}
}

// evalIn evaluates a JavaScript expression in p (a promise's result with
// chromedp.EvalAwaitPromise).
func evalIn[T any](p *tab, expr string, opts ...chromedp.EvaluateOption) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
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

// settled waits until none of the user's own messages waits for its
// confirmation (the server's message coming back).
func (p *tab) settled() {
	p.t.Helper()
	p.wait(`document.querySelector("#messages .local") === null`)
}

// texts returns the shown messages as "seq text" lines, once the page's
// own are confirmed.
func (p *tab) texts() []string {
	p.t.Helper()
	p.settled()
	return evalIn[[]string](p, `[...document.querySelectorAll("#messages .msg")].map(li => li.dataset.seq + " " + li.querySelector(".text").textContent)`)
}

// entries returns what the message list shows, messages as "seq text"
// and history reset markers as "reset" (not the scrollback's line above
// them).
func (p *tab) entries() []string {
	p.t.Helper()
	return evalIn[[]string](p, `[...document.querySelectorAll("#messages > li:not(.older)")].map(li =>
		li.classList.contains("marker") ? "reset" : li.dataset.seq + " " + li.querySelector(".text").textContent)`)
}

// waitState waits until the header's connection state starts with prefix.
func (p *tab) waitState(prefix string) {
	p.t.Helper()
	p.wait(`document.getElementById("state").textContent.startsWith(` + jsString(prefix) + `)`)
}

// wantEntries fails the test unless the list shows want (see entries),
// once the page's own messages are confirmed.
func (p *tab) wantEntries(want ...string) {
	p.t.Helper()
	p.settled()
	if got := p.entries(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		p.t.Fatalf("%s shows %q, want %q", p.name, got, want)
	}
}

// shows is a JavaScript expression: the list has a message with text.
func shows(text string) string {
	return `[...document.querySelectorAll("#messages .msg .text")].some(e => e.textContent === ` + jsString(text) + `)`
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

// apiKey is the server API key of nodes started with withAPI.
const apiKey = "k"

func withAPI(c *gateway.Config) { c.APIKey = apiKey }

func startNode(t *testing.T, mutate func(*gateway.Config)) *gateway.Server {
	srv, _ := gatewaytest.Start(t, mutate)
	return srv
}

// stopNode shuts srv down at once: its pages lose their connection.
func stopNode(srv *gateway.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// startNodeAt starts a node on addr (a stopped node's), where the pages
// reconnect to.
func startNodeAt(t *testing.T, addr string, mutate func(*gateway.Config)) *gateway.Server {
	return startNode(t, func(c *gateway.Config) {
		if mutate != nil {
			mutate(c)
		}
		c.Addr = addr
	})
}

// apiPost calls the server API of srv (started withAPI).
func apiPost(t *testing.T, srv *gateway.Server, path, body string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+srv.AdminAddr()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s %s: %v", path, body, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s %s: %s", path, body, resp.Status)
	}
}

// publish stores a message from user in room through the server API.
func publish(t *testing.T, srv *gateway.Server, room, from, text string) {
	t.Helper()
	apiPost(t, srv, "/api/publish", fmt.Sprintf(`{"room":%q,"from":%q,"text":%q}`, room, from, text))
}

// screenshot writes the tabs side by side as one PNG.
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
