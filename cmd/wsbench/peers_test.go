package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatgw/gateway/bench"
)

// wsbench peers reads the results named peers-SERVER-LOAD.json and writes
// the side-by-side table to --out.
func TestRunPeers(t *testing.T) {
	dir := t.TempDir()
	write := func(server, proto string) string {
		r := &bench.Result{Scenario: "fanout", Params: map[string]string{"rooms": "1", "members": "2000", "rate": "50"},
			Steps: []bench.Step{{Label: "1x2000@50", Expected: 100, Delivered: 100, GatewayCPU: 0.5, Duration: 1,
				Latency: &bench.Latency{Count: 100, P99: 4200}}}}
		if proto != "" {
			r.Params["proto"] = proto
		}
		p := filepath.Join(dir, "peers-"+server+"-fanout-1x2000-50.json")
		if err := r.WriteJSON(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	versions := filepath.Join(dir, "VERSIONS")
	if err := os.WriteFile(versions, []byte("node\tws 8.18.3, node v20\tnpm ci\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := runPeers([]string{"--out", out, "--versions", versions, write("node", "broadcast"), write("gateway", "")}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "peers.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| fanout 1x2000 at 50 msg/s | 4.20 | 200 | 4.20 | 200 |", "| node | broadcast | ws 8.18.3, node v20 | npm ci |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("peers.md lacks %q:\n%s", want, md)
		}
	}
	if err := runPeers([]string{"--out", out, filepath.Join(dir, "VERSIONS")}); err == nil {
		t.Error("a file not named peers-SERVER-LOAD.json was accepted")
	}
}
