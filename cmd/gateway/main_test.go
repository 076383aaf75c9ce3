package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"flag"

	"github.com/chatgw/gateway/internal/gatewaytest"
	"github.com/gorilla/websocket"
)

func TestApplyEnvPrecedence(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	rooms := fs.Int("max-rooms", 100, "")
	rate := fs.Float64("rate", 20, "")
	addr := fs.String("addr", "a", "")
	if err := fs.Parse([]string{"--rate=5"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GATEWAY_MAX_ROOMS": "7", "GATEWAY_RATE": "9"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := applyEnv(fs, lookup, map[string]bool{"rate": true}); err != nil {
		t.Fatal(err)
	}
	if *rooms != 7 || *rate != 5 || *addr != "a" {
		t.Fatalf("max-rooms %d (env 7), rate %v (flag 5 beats env 9), addr %q (default)", *rooms, *rate, *addr)
	}
	env["GATEWAY_ADDR"] = "x"
	env["GATEWAY_MAX_ROOMS"] = "many"
	if err := applyEnv(fs, lookup, map[string]bool{}); err == nil || !strings.Contains(err.Error(), "GATEWAY_MAX_ROOMS") {
		t.Fatalf("bad env value: err = %v, want one naming GATEWAY_MAX_ROOMS", err)
	}
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	bin := buildGateway(t)
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, f := range []string{"addr", "admin-addr", "node-id", "anonymous", "max-message-bytes", "rate", "burst",
		"max-rooms", "heartbeat", "history-size", "presence-max-members", "outbound-max-bytes", "drain-timeout"} {
		if !strings.Contains(string(out), "-"+f+" ") && !strings.Contains(string(out), "-"+f+"\n") {
			t.Errorf("--help does not explain --%s", f)
		}
	}
	// A default is stated once: by the flag package, or in the text when
	// it depends on something else (and then the flag has none).
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Count(line, "(default") > 1 || strings.Contains(line, "(default:") {
			t.Errorf("--help states a default twice or by hand: %s", strings.TrimSpace(line))
		}
	}
}

// buildGateway builds this command once, with a version and commit that
// TestVersionCommand checks.
func buildGateway(t *testing.T) string {
	return gatewaytest.Build(t, ".", "-X main.version=v9.9.9-test -X main.commit=abc1234")
}

var listenLine = regexp.MustCompile(`ws=ws://(\S+)/ws (?:page=\S+ )?admin=(\S+)`)

// TestDrainOnSIGTERM runs the real binary: SIGTERM makes /readyz and new
// upgrades answer 503, closes every connection with 1001 spread over the
// drain window, and exits 0 within --drain-timeout.
func TestDrainOnSIGTERM(t *testing.T) {
	const conns = 40
	const drain = 2 * time.Second
	bin := buildGateway(t)
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--drain-timeout", drain.String())
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	sc := bufio.NewScanner(stderr)
	var addr, admin string
	for sc.Scan() {
		if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
			addr, admin = m[1], m[2]
			break
		}
	}
	if addr == "" {
		t.Fatal("gateway did not log its listen address")
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()

	type closed struct {
		code int
		at   time.Time
	}
	results := make(chan closed, conns)
	for i := 0; i < conns; i++ {
		ws, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/ws?user=u%d", addr, i), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		go func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					var ce *websocket.CloseError
					code := 0
					if errors.As(err, &ce) {
						code = ce.Code
					}
					results <- closed{code, time.Now()}
					return
				}
			}
		}()
	}
	if code := httpStatus(t, "http://"+admin+"/readyz"); code != 200 {
		t.Fatalf("/readyz before drain: %d", code)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if code := httpStatus(t, "http://"+admin+"/readyz"); code != 503 {
		t.Errorf("/readyz while draining: %d, want 503", code)
	}
	if code := httpStatus(t, "http://"+admin+"/healthz"); code != 200 {
		t.Errorf("/healthz while draining: %d, want 200", code)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/ws?user=late", addr), nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("upgrade while draining: err %v, resp %v; want HTTP 503", err, resp)
	}
	var first, last time.Time
	for i := 0; i < conns; i++ {
		select {
		case r := <-results:
			if r.code != 1001 {
				t.Fatalf("connection closed with %d, want 1001", r.code)
			}
			if first.IsZero() {
				first = r.at
			}
			last = r.at
		case <-time.After(drain + time.Second):
			t.Fatalf("only %d of %d connections closed within the drain timeout", i, conns)
		}
	}
	// Spread over the window, not all at once.
	if spread := last.Sub(first); spread < drain/2 {
		t.Errorf("closes spread over %v, want at least %v", spread, drain/2)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v, want status 0", err)
		}
	case <-time.After(drain + 3*time.Second):
		t.Fatal("gateway did not exit after draining")
	}
	if took := time.Since(start); took > drain+2*time.Second {
		t.Fatalf("drain took %v with --drain-timeout %v", took, drain)
	}
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// Under `go run` (no VCS stamp) the version names the work tree's commit.
func TestWorkTreeCommit(t *testing.T) {
	want, err := exec.Command("git", "rev-parse", "--short=7", "HEAD").Output()
	if err != nil {
		t.Skip("not in a git work tree:", err)
	}
	if got := workTreeCommit(); !strings.HasPrefix(got, strings.TrimSpace(string(want))) {
		t.Fatalf("workTreeCommit() = %q, want %q (maybe -dirty)", got, want)
	}
	if v := versionString(); strings.Contains(v, "unknown") {
		t.Fatalf("versionString() = %q: the commit is known", v)
	}
}
