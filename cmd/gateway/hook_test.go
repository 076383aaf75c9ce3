package main

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestHookFlags: the --hook-* flags reach the configuration (the secret
// from GATEWAY_HOOK_SECRET too, never printed by --print-config), and a
// value that cannot work is a startup error naming its flag.
func TestHookFlags(t *testing.T) {
	env := func(k string) (string, bool) { return "env-hook-secret", k == "GATEWAY_HOOK_SECRET" }
	opt, fs, err := parse([]string{"--hook-url", "http://127.0.0.1:9/hooks", "--hook-events", "join,publish,presence",
		"--hook-timeout", "300ms", "--hook-fail", "open"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := opt.cfg
	if c.HookURL != "http://127.0.0.1:9/hooks" || c.HookEvents != "join,publish,presence" || c.HookTimeout != 300*time.Millisecond ||
		c.HookFail != "open" || c.HookSecret != "env-hook-secret" {
		t.Fatalf("hook settings: url %q, events %q, timeout %v, fail %q, secret %q",
			c.HookURL, c.HookEvents, c.HookTimeout, c.HookFail, c.HookSecret)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	var printed bytes.Buffer
	if err := printConfig(&printed, fs); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(printed.String(), "env-hook-secret") || !strings.Contains(printed.String(), "# hook-secret is set") {
		t.Fatalf("--print-config and the hook secret:\n%s", printed.String())
	}

	defaults, _, err := parse(nil, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d := defaults.cfg; d.HookURL != "" || d.HookEvents != "message" || d.HookTimeout != 2*time.Second || d.HookFail != "closed" {
		t.Fatalf("hook defaults: url %q, events %q, timeout %v, fail %q", d.HookURL, d.HookEvents, d.HookTimeout, d.HookFail)
	}

	for _, tc := range []struct {
		args []string
		want string // in the error; "" for none
	}{
		{[]string{"--hook-events", "join,bogus"}, `--hook-events "join,bogus": unknown event "bogus"`},
		{[]string{"--hook-fail", "maybe"}, `--hook-fail "maybe": want closed or open`},
		{[]string{"--hook-timeout", "0s"}, "--hook-timeout 0s must be positive"},
		{[]string{"--hook-url", "ftp://app/hooks"}, "--hook-url"},
		{[]string{"--hook-url", "http://app/hooks", "--hook-events", "connect"}, ""},
		{[]string{"--hook-url", "http://app/hooks", "--redis-url", "redis://127.0.0.1:6379"}, ""}, // message: one node of the cluster at a time
		{[]string{"--hook-url", "http://app/hooks", "--redis-url", "redis://127.0.0.1:6379", "--hook-events", "join,publish,presence,disconnect"}, ""},
	} {
		o, _, err := parse(tc.args, noEnv, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		err = o.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v, want no error", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%q: error %v, want one line with %q", tc.args, err, tc.want)
		}
	}

	// The binary says it in one line and exits 2, before listening.
	out, err := gatewayCmd(t, nil, "--addr", "127.0.0.1:0", "--admin-addr", "", "--hook-url", "http://127.0.0.1:9/hooks",
		"--hook-events", "join,bogus").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("bad --hook-events: %v, want exit status 2\n%s", err, out)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "--hook-events") {
		t.Fatalf("bad --hook-events: output %q, want one line naming the flag", out)
	}
}
