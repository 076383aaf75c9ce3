package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatgw/gateway/internal/wstest"
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

// TestHelpExplainsEveryFlag: every flag the binary defines, as its own
// --help lists them, has an explanation there and a row in the README's
// "## Flags" table, so adding a flag without documenting it fails here.
func TestHelpExplainsEveryFlag(t *testing.T) {
	bin := buildGateway(t)
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	help := helpFlags(string(out))
	// The parser above must not silently find too few: --print-config
	// names every flag but itself, --config and the secrets.
	cfg, err := exec.Command(bin, "--print-config").Output()
	if err != nil {
		t.Fatalf("--print-config: %v", err)
	}
	for _, line := range strings.Split(string(cfg), "\n") {
		if k, _, ok := strings.Cut(line, " = "); ok {
			if _, listed := help[k]; !listed {
				t.Errorf("--print-config has %q, which the --help parser did not find", k)
			}
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := readmeFlags(t, string(readme))
	for name, text := range help {
		if strings.TrimSpace(text) == "" {
			t.Errorf("--help does not explain --%s", name)
		}
		if !rows[name] {
			t.Errorf("--%s has no row in the README's \"## Flags\" table", name)
		}
	}
	for name := range rows {
		if _, ok := help[name]; !ok {
			t.Errorf("the README's \"## Flags\" table has --%s, which the binary does not define", name)
		}
	}
	t.Logf("%d flags checked", len(help))
	// A default is stated once: by the flag package, or in the text when
	// it depends on something else (and then the flag has none).
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Count(line, "(default") > 1 || strings.Contains(line, "(default:") {
			t.Errorf("--help states a default twice or by hand: %s", strings.TrimSpace(line))
		}
	}
}

// helpFlags maps each flag of flag.PrintDefaults' output ("  -name type"
// then indented lines of usage) to its usage text.
func helpFlags(help string) map[string]string {
	flags := map[string]string{}
	name := ""
	for _, line := range strings.Split(help, "\n") {
		switch {
		case strings.HasPrefix(line, "  -"):
			name, _, _ = strings.Cut(strings.TrimPrefix(line, "  -"), " ")
			flags[name] = ""
		case strings.HasPrefix(line, "    \t") && name != "":
			flags[name] += strings.TrimSpace(line) + " "
		default:
			name = ""
		}
	}
	return flags
}

// readmeFlags returns the flags named in the first column of the README's
// "## Flags" table (one or more `--name` per row).
func readmeFlags(t *testing.T, readme string) map[string]bool {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Flags\n")
	if !ok {
		t.Fatal(`README.md has no "## Flags" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	names := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 3 {
			continue
		}
		for _, m := range readmeFlag.FindAllStringSubmatch(cells[1], -1) {
			names[m[1]] = true
		}
	}
	if len(names) == 0 {
		t.Fatal(`no flags found in the README's "## Flags" table`)
	}
	return names
}

var readmeFlag = regexp.MustCompile("`--([a-z0-9-]+)`")

// TestDrainOnSIGTERM runs the real binary: SIGTERM makes /readyz and new
// upgrades answer 503, closes every connection with 1001 spread over the
// drain window, and exits 0 within --drain-timeout.
func TestDrainOnSIGTERM(t *testing.T) {
	const conns = 40
	const drain = 2 * time.Second
	p := startGateway(t, nil, "--drain-timeout", drain.String())
	addr, admin := p.addr, p.admin

	type closed struct {
		code int
		at   time.Time
	}
	results := make(chan closed, conns)
	for i := 0; i < conns; i++ {
		c := dialNode(t, addr, fmt.Sprintf("u%d", i))
		go func() { results <- closed{wstest.CloseCode(<-c.Closed), time.Now()} }()
	}
	if code := httpStatus(t, "http://"+admin+"/readyz"); code != 200 {
		t.Fatalf("/readyz before drain: %d", code)
	}
	start := time.Now()
	p.signal(syscall.SIGTERM)
	poll(t, time.Second, "/readyz 503 after SIGTERM", func() bool { return httpStatus(t, "http://"+admin+"/readyz") == 503 })
	if code := httpStatus(t, "http://"+admin+"/healthz"); code != 200 {
		t.Errorf("/healthz while draining: %d, want 200", code)
	}
	if code, _ := upgrade(t, p.wsURL("user=late"), nil); code != 503 {
		t.Errorf("upgrade while draining: HTTP %d, want 503", code)
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
	if err := p.waitExit(drain + 3*time.Second); err != nil {
		t.Fatalf("exit: %v, want status 0", err)
	}
	if took := time.Since(start); took > drain+2*time.Second {
		t.Fatalf("drain took %v with --drain-timeout %v", took, drain)
	}
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
