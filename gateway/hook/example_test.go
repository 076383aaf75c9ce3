package hook_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/chatgw/gateway/gateway/hook"
)

// A receiver checks the signature of every call before it trusts the
// body, then answers: here a publish hook that masks a word.
func ExampleVerify() {
	const secret = "s3cret"
	publish := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || !hook.Verify(secret, body, r.Header.Get(hook.SignatureHeader)) {
			http.Error(w, `{"reason":"bad signature"}`, http.StatusForbidden)
			return
		}
		if strings.Contains(string(body), "darn") {
			io.WriteString(w, `{"text":"****"}`) // 200: allowed, text replaced
		}
		// 200 with an empty body: allowed unchanged
	}

	// What the gateway would send.
	body := []byte(`{"node":"n1","user":"alice","conn":"c1","room":"general","text":"darn"}`)
	for _, sig := range []string{hook.Sign(secret, body), hook.Sign("guess", body)} {
		req := httptest.NewRequest("POST", "/hooks/publish", strings.NewReader(string(body)))
		req.Header.Set(hook.SignatureHeader, sig)
		rec := httptest.NewRecorder()
		publish(rec, req)
		fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// 200 {"text":"****"}
	// 403 {"reason":"bad signature"}
}

// The gateway's side: a decision is asked without blocking, and its answer
// comes to a callback.
func ExampleHooks_Decide() {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hooks/join" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"reason":"members only"}`)
		}
	}))
	defer app.Close()

	cfg := hook.Config{URL: app.URL + "/hooks", Events: hook.EventsOf(hook.EventJoin)}
	h, err := hook.New(cfg, nil, nil)
	if err != nil {
		panic(err)
	}
	defer h.Close()

	done := make(chan hook.Decision, 1)
	h.Decide(hook.EventJoin, hook.JoinRequest{Node: "n1", User: "alice", Conn: "c1", Room: "staff"},
		func(d hook.Decision) { done <- d }) // on a worker goroutine: must not block
	d := <-done
	fmt.Println(d.Verdict, d.Reason)
	// Output: deny members only
}
