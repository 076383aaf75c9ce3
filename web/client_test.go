package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/chatgw/gateway/gateway"
)

// client.js in the browser, driven from the test: close codes.

const secret = "web-test-secret-0123456789abcdef"

func token(t *testing.T, user string, ttl time.Duration) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "exp": time.Now().Add(ttl).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startClient opens the page's origin in p and makes window.c, a
// ChatClient with opts (a JS object literal), recording its state changes
// in window.events. It resolves once the client is online.
func startClient(p *tab, base, opts string) {
	p.t.Helper()
	p.run(chromedp.Navigate(base + "/"))
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
		const { ChatClient } = await import("/client.js");
		window.events = [];
		window.c = new ChatClient(Object.assign({ url: "ws://" + location.host + "/ws" }, `+opts+`));
		c.addEventListener("state", (e) => events.push(e.detail.state + (e.detail.code ? ":" + e.detail.code : "")));
		const w = await c.connect();
		return w.user;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: starting the client: %v", p.name, err)
	}
}

func disconnect(t *testing.T, srv *gateway.Server, user string, code int) {
	t.Helper()
	apiPost(t, srv, "/api/disconnect", fmt.Sprintf(`{"user":%q,"code":%d}`, user, code))
}

// TestClientStopsOn4002AndReconnectsOn1001: 4002 (abuse) ends the client
// for good; 1001 (draining) reconnects at once.
func TestClientStopsOn4002AndReconnectsOn1001(t *testing.T) {
	srv := startNode(t, withAPI)
	b := browser(t)
	p := newTab(t, b, "client")
	startClient(p, "http://"+srv.Addr(), `{ user: "carol" }`)

	start := time.Now()
	disconnect(t, srv, "carol", 1001)
	p.wait(`events.includes("reconnecting:1001") && c.state === "online"`)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("reconnecting after 1001 took %v", took)
	}
	disconnect(t, srv, "carol", 4002)
	p.wait(`c.state === "stopped"`)
	time.Sleep(1500 * time.Millisecond) // longer than any first backoff
	if st := evalIn[string](p, `c.state`); st != "stopped" {
		t.Fatalf("after 4002 the client is %q", st)
	}
	if n := srv.Hub().Stats().Connections; n != 0 {
		t.Fatalf("after 4002 the client reconnected: %d connections", n)
	}
	// A send now could never go out: it fails at once instead of waiting.
	if got := evalIn[string](p, `c.send("general", "too late").then(() => "sent", (e) => e.code)`, chromedp.EvalAwaitPromise); got != "stopped" {
		t.Fatalf("a send after 4002: %q", got)
	}
}

// TestClientGetsANewTokenOn4000: when the token expires the gateway closes
// with 4000; the client asks getToken for a new one and reconnects with it.
func TestClientGetsANewTokenOn4000(t *testing.T) {
	srv := startNode(t, func(c *gateway.Config) { c.JWTSecret = secret; c.Anonymous = false })
	b := browser(t)
	p := newTab(t, b, "client")
	first, second := token(t, "dave", 2*time.Second), token(t, "dave", time.Hour)
	startClient(p, "http://"+srv.Addr(), fmt.Sprintf(`{ token: %q, getToken: async () => { events.push("getToken"); return %q; } }`, first, second))
	p.wait(`events.includes("reconnecting:4000") && events.includes("getToken") && c.state === "online" && c.token === ` + jsString(second))
}
