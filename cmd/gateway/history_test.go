package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gateway history through the real binary: a room's history moved from
// one node's --data-dir to another's with export and import, after which a
// client resumes on the second node as if nothing had moved.

// histRun runs `gateway history args...` with stdin and returns its
// standard output, standard error and exit status.
func histRun(t *testing.T, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := gatewayCmd(t, nil, append([]string{"history"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		code = ee.ExitCode()
	default:
		t.Fatalf("gateway history %q: %v\n%s", args, err, errb.String())
	}
	return out.String(), errb.String(), code
}

// oneLine fails the test unless stderr is one line starting with prefix
// and holding want.
func oneLine(t *testing.T, what, stderr, prefix, want string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, prefix) || !strings.Contains(stderr, want) {
		t.Errorf("%s: stderr %q, want one line %q... with %q", what, stderr, prefix, want)
	}
}

func TestHistoryExportImportMovesRoom(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startGateway(t, nil, "--data-dir", dirA)
	bob := dialNode(t, a.addr, "bob")
	inboxEpoch := bob.WaitFor("joined", func(f wsFrame) bool { return f.Str("room") == "@bob" }).Str("epoch")
	alice := dialNode(t, a.addr, "alice")
	epoch := alice.Join("general").Str("epoch")
	for i := 1; i <= 5; i++ {
		if ack := alice.SendText("general", fmt.Sprint("m", i)); ack.Num("seq") != uint64(i) {
			t.Fatalf("send %d: %v", i, ack)
		}
	}
	if ack := alice.Request(map[string]any{"type": "dm", "id": "d", "to": "bob", "text": "psst"}); ack.Str("room") != "@bob" || ack.Num("seq") != 1 {
		t.Fatalf("dm: %v", ack)
	}
	bob.WaitFor("message", func(f wsFrame) bool { return f.Str("text") == "psst" })

	// While the node runs, its store is locked: a clear error, at once.
	start := time.Now()
	_, stderr, code := histRun(t, nil, "export", "--data-dir", dirA, "--room", "general")
	if code != 1 {
		t.Errorf("export from a running node's store: exit %d, want 1", code)
	}
	oneLine(t, "export from a running node's store", stderr, "gateway history export: ", "stop the node first")
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("export from a running node's store took %v to fail", took)
	}

	a.signal(syscall.SIGTERM)
	if err := a.waitExit(15 * time.Second); err != nil {
		t.Fatalf("node A after SIGTERM: %v", err)
	}

	rooms, stderr, code := histRun(t, nil, "rooms", "--data-dir", dirA)
	if code != 0 || rooms != "@alice\n@bob\ngeneral\n" {
		t.Fatalf("rooms: exit %d, %q (stderr %q), want @alice, @bob, general", code, rooms, stderr)
	}
	file := filepath.Join(t.TempDir(), "general.jsonl")
	stdout, stderr, code := histRun(t, nil, "export", "--data-dir", dirA, "--room", "general", "--out", file)
	if code != 0 || stdout != "" || !strings.Contains(stderr, "exported 5 messages") {
		t.Fatalf("export --out: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	exported, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(exported), "\n"), "\n")
	if head := fmt.Sprintf(`{"version":1,"room":"general","epoch":%q,"latest":5}`, epoch); len(lines) != 6 || lines[0] != head {
		t.Fatalf("export:\n%s\nwant the header %s and 5 messages", exported, head)
	}
	if stdout, _, _ := histRun(t, nil, "export", "--data-dir", dirA, "--room", "general"); stdout != string(exported) {
		t.Fatalf("export to standard output:\n%s\ndiffers from --out's:\n%s", stdout, exported)
	}
	inbox, _, code := histRun(t, nil, "export", "--data-dir", dirA, "--room", "@bob")
	if code != 0 {
		t.Fatalf("export @bob: exit %d", code)
	}

	// Into a new store: one room from a file, one from standard input.
	if _, stderr, code := histRun(t, nil, "import", "--data-dir", dirB, "--in", file); code != 0 || !strings.Contains(stderr, `imported 5 messages into room "general"`) {
		t.Fatalf("import --in: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := histRun(t, []byte(inbox), "import", "--data-dir", dirB); code != 0 || !strings.Contains(stderr, `imported 1 messages into room "@bob"`) {
		t.Fatalf("import from standard input: exit %d, stderr %q", code, stderr)
	}
	// Twice is refused: the room has history now.
	_, stderr, code = histRun(t, nil, "import", "--data-dir", dirB, "--in", file)
	if code != 1 {
		t.Errorf("second import: exit %d, want 1", code)
	}
	oneLine(t, "second import", stderr, "gateway history import: ", "already has")

	b := startGateway(t, nil, "--data-dir", dirB)
	bob = dialNode(t, b.addr, "bob")
	j := bob.Request(map[string]any{"type": "join", "id": "r", "room": "general",
		"since": map[string]any{"seq": 2, "epoch": epoch}})
	msgs, _ := j["messages"].([]any)
	if j["recovered"] != true || j.Num("seq") != 5 || j.Str("epoch") != epoch || len(msgs) != 3 {
		t.Fatalf("resume on node B from seq 2: %v, want recovered with seqs 3..5", j)
	}
	for k, m := range msgs {
		if mm := m.(map[string]any); mm["seq"] != float64(3+k) || mm["text"] != fmt.Sprint("m", 3+k) || mm["from"] != "alice" {
			t.Fatalf("resumed message %d: %v", k, mm)
		}
	}
	j = bob.Request(map[string]any{"type": "join", "id": "i", "room": "@bob",
		"since": map[string]any{"seq": 0, "epoch": inboxEpoch}})
	msgs, _ = j["messages"].([]any)
	if j["recovered"] != true || len(msgs) != 1 || msgs[0].(map[string]any)["to"] != "bob" || msgs[0].(map[string]any)["text"] != "psst" {
		t.Fatalf("inbox resume on node B: %v, want recovered with the dm", j)
	}
	// The room goes on where it was.
	bob.Join("general")
	if ack := bob.SendText("general", "after the move"); ack.Num("seq") != 6 {
		t.Fatalf("send on node B: %v, want seq 6", ack)
	}
}

func TestHistoryUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nothing-here")
	for _, c := range []struct {
		args      []string
		code      int
		prefix    string
		want      string
		noDataDir bool
	}{
		{args: nil, code: 2, prefix: "gateway history: ", want: "export, import or rooms"},
		{args: []string{"frob"}, code: 2, prefix: "gateway history frob: ", want: `unknown subcommand "frob"`},
		{args: []string{"export", "--nope"}, code: 2, prefix: "gateway history export: ", want: "-nope"},
		{args: []string{"export", "--data-dir", missing}, code: 2, prefix: "gateway history export: ", want: "--room is required"},
		{args: []string{"rooms", "extra"}, code: 2, prefix: "gateway history rooms: ", want: `unexpected argument "extra"`},
		{args: []string{"import", "--data-dir="}, code: 2, prefix: "gateway history import: ", want: "--data-dir is empty"},
		{args: []string{"export", "--data-dir", missing, "--room", "r"}, code: 1, prefix: "gateway history export: ", want: "no history database", noDataDir: true},
		{args: []string{"rooms", "--data-dir", missing}, code: 1, prefix: "gateway history rooms: ", want: "no history database", noDataDir: true},
		{args: []string{"import", "--data-dir", missing, "--in", missing + ".jsonl"}, code: 1, prefix: "gateway history import: ", want: "no such file", noDataDir: true},
	} {
		stdout, stderr, code := histRun(t, nil, c.args...)
		if code != c.code || stdout != "" {
			t.Errorf("%q: exit %d, stdout %q; want exit %d and no output", c.args, code, stdout, c.code)
		}
		oneLine(t, fmt.Sprintf("%q", c.args), stderr, c.prefix, c.want)
		if _, err := os.Stat(missing); c.noDataDir && err == nil {
			t.Errorf("%q created the --data-dir it did not find", c.args)
		}
	}
	for _, args := range [][]string{{"--help"}, {"export", "--help"}, {"import", "-h"}} {
		stdout, stderr, code := histRun(t, nil, args...)
		if code != 0 || stderr != "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
		for _, sub := range []string{"gateway history export", "gateway history import", "gateway history rooms", "stop the node first"} {
			if !strings.Contains(stdout, sub) {
				t.Errorf("%q: usage lacks %q:\n%s", args, sub, stdout)
			}
		}
	}
}
