package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"github.com/chatgw/gateway/bench"
	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/internal/gatewaytest"
	"github.com/chatgw/gateway/internal/wstest"
)

// wsbenchBinary builds this command once: worker processes are the binary
// re-executed, so the test must run the real thing.
func wsbenchBinary(t *testing.T) string { return gatewaytest.Build(t, ".", "") }

func startGateway(t *testing.T) string {
	srv, _ := gatewaytest.Start(t, func(c *gateway.Config) { c.PresenceMaxMembers = 10000 })
	return srv.Addr()
}

// roomTotal asks the gateway how many users are in room.
func roomTotal(t *testing.T, addr, room string) int {
	t.Helper()
	c := wstest.Dial(t, "ws://"+addr+"/ws?user=observer")
	defer c.Close()
	p := c.Request(map[string]any{"type": "presence", "id": "p", "room": room})
	if p.Str("type") != "presence" {
		t.Fatalf("presence request answered with %v", p)
	}
	return int(p.Num("total"))
}

// TestHoldGrowsOnRequest drives one worker process the way idle's parent
// does, and asks the gateway whether the connections are really there.
func TestHoldGrowsOnRequest(t *testing.T) {
	addr := startGateway(t)
	cmd := exec.Command(wsbenchBinary(t), "hold", "--addr", addr, "--rooms", "1", "--run-id", "T1", "--tag", "w0")
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string)
	go func() {
		buf := make([]byte, 4096)
		var acc string
		for {
			n, err := out.Read(buf)
			acc += string(buf[:n])
			for {
				i := strings.IndexByte(acc, '\n')
				if i < 0 {
					break
				}
				lines <- acc[:i]
				acc = acc[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	for _, step := range []struct {
		send, want string
		held       int
	}{{"50", "ok 50", 50}, {"120", "ok 120", 120}, {"80", "ok 120", 120}, {"x", "error: bad count \"x\"", 120}} {
		fmt.Fprintln(in, step.send)
		select {
		case got := <-lines:
			if got != step.want {
				t.Fatalf("after %q: %q, want %q", step.send, got, step.want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no answer to %q", step.send)
		}
		if n := roomTotal(t, addr, "iT1-r0"); n != step.held {
			t.Fatalf("after %q the room has %d members, want %d", step.send, n, step.held)
		}
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("hold did not exit cleanly at the end of its input: %v", err)
	}
}

// TestWorkersMerge runs idle and connect split over worker processes and
// checks the merged results account for every connection.
func TestWorkersMerge(t *testing.T) {
	addr := startGateway(t)
	dir := t.TempDir()
	bin := wsbenchBinary(t)
	run := func(args ...string) *bench.Result {
		f := filepath.Join(dir, args[0]+".json")
		args = append(args, "--addr", addr, "--pid", fmt.Sprint(os.Getpid()), "--json", f)
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("wsbench %v: %v\n%s", args, err, out)
		}
		var r bench.Result
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		return &r
	}
	idle := run("idle", "--workers", "3", "--steps", "100,301", "--settle", "10ms")
	if len(idle.Steps) != 3 || idle.Steps[2].Conns != 301 || idle.Steps[2].Handshakes != 201 {
		t.Fatalf("idle steps: %+v", idle.Steps)
	}
	if !strings.Contains(strings.Join(idle.Notes, " "), "3 worker processes") {
		t.Fatalf("idle notes do not say workers were used: %q", idle.Notes)
	}
	conn := run("connect", "--workers", "2", "--conns", "151")
	st := conn.Steps[0]
	if st.Handshakes != 151 || st.Latency.Count != 151 || st.Errors != 0 {
		t.Fatalf("connect merged step: %+v", st)
	}
}

// TestFanoutSlowReaders runs fanout with slow readers against a node whose
// outbound cap is small: the members that read get every message, the
// slow ones are counted apart, and each slow reader, read back after the
// load, ends with the node's 4001 close frame.
func TestFanoutSlowReaders(t *testing.T) {
	srv, _ := gatewaytest.Start(t, func(c *gateway.Config) {
		c.Rate, c.Burst = 100000, 100000
		c.OutboundMaxBytes = 64 << 10
	})
	f := filepath.Join(t.TempDir(), "slow.json")
	args := []string{"fanout", "--addr", srv.Addr(), "--pid", fmt.Sprint(os.Getpid()), "--json", f,
		"--members", "30", "--slow", "10", "--publishers", "3", "--rate", "200", "--payload", "1000",
		"--duration", "3s", "--drain", "3s"}
	if out, err := exec.Command(wsbenchBinary(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("wsbench %v: %v\n%s", args, err, out)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	var r bench.Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	st := r.Steps[0]
	if st.SlowReaders != 10 || st.Conns != 20 || st.Expected != st.Sent*20 || st.Delivered != st.Expected || st.Gaps != 0 {
		t.Fatalf("step: %d slow, %d conns, sent %d, expected %d, delivered %d, gaps %d; want 10 slow, 20 reading members getting all",
			st.SlowReaders, st.Conns, st.Sent, st.Expected, st.Delivered, st.Gaps)
	}
	if len(st.Timeline) < 3 || r.Params["slow"] != "10" {
		t.Fatalf("timeline of %d seconds, params %v", len(st.Timeline), r.Params)
	}
	notes := strings.Join(r.Notes, " ")
	if !strings.Contains(notes, "slow readers: 10; after the load, 10 had been sent a close frame (10 x 4001)") {
		t.Fatalf("notes %q: want every slow reader closed with 4001", notes)
	}
}

// A scenario the node's announced limits would break is refused before it
// runs, naming the gateway flags to change (the example: 100 msg/s
// from one publisher against the default 20/s).
func TestScenarioOverTheNodesLimitsIsRefused(t *testing.T) {
	srv, _ := gatewaytest.Start(t, nil) // default limits: --rate 20
	out, err := exec.Command(wsbenchBinary(t), "fanout", "--addr", srv.Addr(),
		"--rooms", "1", "--members", "50", "--rate", "100", "--duration", "1s").CombinedOutput()
	if err == nil {
		t.Fatalf("wsbench ran over the node's rate limit and exited 0:\n%s", out)
	}
	if !strings.Contains(string(out), "--rate") || !strings.Contains(string(out), "100.0 msgs/s") {
		t.Fatalf("refusal does not name the rate and the gateway flag:\n%s", out)
	}
	if strings.Contains(string(out), "deliveries") {
		t.Fatalf("the scenario ran before being refused:\n%s", out)
	}
}

// A run that lost, reordered or duplicated anything exits non-zero, after
// printing its table and writing its JSON.
func TestUncleanRunFails(t *testing.T) {
	clean := &bench.Result{Steps: []bench.Step{{Expected: 10, Delivered: 10}}}
	if err := unclean("fanout", clean); err != nil {
		t.Fatalf("clean run: %v", err)
	}
	for _, st := range []bench.Step{
		{Expected: 10, Delivered: 9},
		{Expected: 10, Delivered: 10, Gaps: 1},
		{Expected: 10, Delivered: 10, Duplicates: 1},
	} {
		if err := unclean("fanout", &bench.Result{Steps: []bench.Step{st}}); err == nil {
			t.Errorf("step %+v passed as clean", st)
		}
	}
	// A ramp ends at the first step that loses: only that one may.
	ramp := &bench.Result{Steps: []bench.Step{{Expected: 10, Delivered: 10}, {Expected: 10, Delivered: 3}}}
	if err := unclean("ramp", ramp); err != nil {
		t.Fatalf("ramp whose last step lost: %v", err)
	}
	ramp.Steps[0].Delivered = 9
	if err := unclean("ramp", ramp); err == nil {
		t.Fatal("ramp that lost before its last step passed as clean")
	}
}

// SCENARIO -h lists that scenario's flags only and exits 0 without an
// error line.
func TestScenarioHelp(t *testing.T) {
	out, err := exec.Command(wsbenchBinary(t), "dm", "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("wsbench dm -h: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "--pairs") || !strings.Contains(s, "--addr") || !strings.Contains(s, "--rate") {
		t.Fatalf("dm -h lacks dm's flags:\n%s", s)
	}
	if strings.Contains(s, "--members") || strings.Contains(s, "--steps") || strings.Contains(s, "wsbench:") {
		t.Fatalf("dm -h lists other scenarios' flags or an error:\n%s", s)
	}
}
