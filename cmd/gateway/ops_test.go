package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func noEnv(string) (string, bool) { return "", false }

// TestConfigFileRoundTrip: what --print-config writes, --config reads back
// to the same settings; and the file sits below flags and the environment.
func TestConfigFileRoundTrip(t *testing.T) {
	file := writeFile(t, "gw.toml", `
addr = "127.0.0.1:7000"
max-rooms = 7
rate = 2.5
anonymous = false
jwt-secret = "file-secret"
heartbeat = "40s"
origins = ["https://a.example", "https://b.example"]
fanout-budget = "0s"
log-format = "json"
`)
	opt, fs, err := parse([]string{"--config", file}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := opt.cfg
	if c.Addr != "127.0.0.1:7000" || c.MaxRooms != 7 || c.Rate != 2.5 || c.Anonymous || c.JWTSecret != "file-secret" ||
		c.Heartbeat != 40*time.Second || strings.Join(c.Origins, " ") != "https://a.example https://b.example" ||
		c.FanoutBudget != 0 || opt.logFormat != "json" {
		t.Fatalf("config from file: %+v (log format %q)", c, opt.logFormat)
	}
	var printed bytes.Buffer
	if err := printConfig(&printed, fs); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(printed.String(), "file-secret") {
		t.Fatalf("--print-config printed the JWT secret:\n%s", printed.String())
	}
	// Read the printed file back: every setting the same (the secret,
	// never printed, given again by the environment).
	again := writeFile(t, "again.toml", printed.String())
	env := func(k string) (string, bool) { return "file-secret", k == "GATEWAY_JWT_SECRET" }
	opt2, fs2, err := parse([]string{"--config", again}, env, io.Discard)
	if err != nil {
		t.Fatalf("reading --print-config's output back: %v\n%s", err, printed.String())
	}
	var printed2 bytes.Buffer
	if err := printConfig(&printed2, fs2); err != nil {
		t.Fatal(err)
	}
	if printed.String() != printed2.String() {
		t.Fatalf("round trip changed the configuration:\n%s\nthen\n%s", printed.String(), printed2.String())
	}
	c.Logger, opt2.cfg.Logger = nil, nil
	if strings.Join(c.Origins, ",") != strings.Join(opt2.cfg.Origins, ",") || c.Heartbeat != opt2.cfg.Heartbeat || c.JWTSecret != opt2.cfg.JWTSecret {
		t.Fatalf("round trip: %+v then %+v", c, opt2.cfg)
	}

	// Precedence: flag > env > file > default.
	env = func(k string) (string, bool) {
		v, ok := map[string]string{"GATEWAY_MAX_ROOMS": "8", "GATEWAY_RATE": "9"}[k]
		return v, ok
	}
	opt, _, err = parse([]string{"--config", file, "--rate", "3"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if opt.cfg.Rate != 3 || opt.cfg.MaxRooms != 8 || opt.cfg.Heartbeat != 40*time.Second || opt.cfg.Burst != 40 {
		t.Fatalf("precedence: rate %v (flag 3), max-rooms %d (env 8), heartbeat %v (file 40s), burst %d (default 40)",
			opt.cfg.Rate, opt.cfg.MaxRooms, opt.cfg.Heartbeat, opt.cfg.Burst)
	}
}

func TestConfigFileErrorsNameTheKey(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"max-rooms = 5\nmax_conns = 3\n", `unknown key "max_conns" (did you mean "max-conns"?)`},
		{"bogus = 1\n", `unknown key "bogus"`},
		{"config = \"x.toml\"\n", `unknown key "config"`},
		{"max-rooms = \"lots\"\n", `key "max-rooms"`},
		{"heartbeat = 25\n", `key "heartbeat"`},
		{"[server]\naddr = \"x\"\n", `unknown key "server"`},
		{"origins = [1, 2]\n", `key "origins": a list may only hold strings`},
		{"addr = \n", "toml"},
	} {
		file := writeFile(t, "bad.toml", c.text)
		_, _, err := parse([]string{"--config", file}, noEnv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), file) {
			t.Errorf("config %q: err %v, want one naming the file and containing %q", c.text, err, c.want)
		}
	}
	if _, _, err := parse([]string{"--config", "/nonexistent.toml"}, noEnv, io.Discard); err == nil {
		t.Error("a missing config file is not an error")
	}
	for _, args := range [][]string{{"--log-format", "xml"}, {"--profile", "heap"}, {"stray"}} {
		if _, _, err := parse(args, noEnv, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	out, err := exec.Command(buildGateway(t), "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "gateway v9.9.9-test (commit abc1234)" {
		t.Fatalf("gateway version: %q %v", out, err)
	}
}

// TestProfileWrittenOnSIGTERM: --profile cpu records for the life of the
// process and leaves a non-empty cpu.pprof after a clean shutdown; logs
// are JSON with --log-format json.
func TestProfileWrittenOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	p := startGateway(t, nil, "--profile", "cpu", "--profile-dir", dir, "--log-format", "json", "--drain-timeout", "200ms")
	var line map[string]any
	if err := json.Unmarshal([]byte(p.listen), &line); err != nil || line["level"] != "INFO" {
		t.Fatalf("listening line %q: %v, want JSON at level INFO", p.listen, err)
	}
	p.signal(syscall.SIGTERM)
	if err := p.waitExit(10 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(p.log()), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("log line is not JSON: %q", l)
		}
	}
	st, err := os.Stat(filepath.Join(dir, "cpu.pprof"))
	if err != nil || st.Size() == 0 {
		t.Fatalf("cpu.pprof after SIGTERM: %v (size %d)", err, sizeOf(st))
	}
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return -1
	}
	return st.Size()
}
