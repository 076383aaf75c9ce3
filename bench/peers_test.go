package bench

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestPeerRunName(t *testing.T) {
	for path, want := range map[string][2]string{
		"out/peers-gateway-fanout-1x2000-50.json": {"gateway", "fanout-1x2000-50"},
		"peers-centrifugo-idle.json":              {"centrifugo", "idle"},
		"out/fanout-1x2000.json":                  {},
		"peers-gateway.json":                      {},
		"peers-gateway-idle.txt":                  {},
	} {
		s, l, ok := PeerRunName(path)
		if ok != (want[0] != "") || s != want[0] || l != want[1] {
			t.Errorf("PeerRunName(%q) = %q, %q, %v; want %q, %q", path, s, l, ok, want[0], want[1])
		}
	}
}

// peerFanout is a fanout (or, with several steps, ramp) result.
func peerFanout(proto, rooms, members, rate string, steps ...Step) *Result {
	r := &Result{Scenario: "fanout", Params: map[string]string{"rooms": rooms, "members": members, "rate": rate}, Steps: steps,
		Machine: Machine{CPU: "Test CPU", Cores: 2, MemBytes: 24 << 30, Kernel: "6.1", GoVersion: "go1.26"}}
	if proto != "" {
		r.Params["proto"] = proto
	}
	if len(steps) > 1 {
		r.Scenario = "ramp"
		delete(r.Params, "rate")
		r.Params["rates"] = "2,5,10"
		r.Params["p99_bound_ms"] = "50"
	}
	return r
}

func traffic(rate float64, p99us float64, expected, delivered int64, cpu float64) Step {
	return Step{Label: "s", TargetRate: rate, Duration: 10, Expected: expected, Delivered: delivered, GatewayCPU: cpu, LoadAvg: rate/10 + 1,
		Latency: &Latency{Count: delivered, P99: p99us}}
}

func TestPeersMarkdown(t *testing.T) {
	idle := func(proto string, bpc float64) *Result {
		r := &Result{Scenario: "idle", Params: map[string]string{}, Steps: []Step{{Label: "0"}, {Label: "2000", Conns: 2000},
			{Label: "10000", Conns: 10000, BytesPerConn: bpc, GatewayRSS: 200 << 20}}}
		if proto != "" {
			r.Params["proto"] = proto
		}
		return r
	}
	gw := peerFanout("", "1", "2000", "50", traffic(50, 3210, 1_000_000, 1_000_000, 4))
	gw.Gateway = GatewayInfo{Commit: "abc1234", Flags: []string{"--addr", "127.0.0.1:18080"}}
	runs := []PeerRun{
		{"centrifugo", "fanout-100x100-2000", peerFanout("centrifugo", "100", "100", "2000", traffic(2000, 45_000, 2_000_000, 2_000_000, 16))},
		{"gorilla", "fanout-1x2000-50", peerFanout("broadcast", "1", "2000", "50", traffic(50, 12_500, 1_000_000, 990_000, 5))},
		{"gateway", "fanout-1x2000-50", gw},
		{"gateway", "idle", idle("", 5632)},
		{"gorilla", "idle", idle("broadcast", 20480)},
		{"gateway", "fanout-100x100-2000", peerFanout("", "100", "100", "2000", traffic(2000, 20_000, 2_000_000, 2_000_000, 10))},
		{"gateway", "ramp-1x10000", peerFanout("", "1", "10000", "",
			traffic(2, 5000, 200_000, 200_000, 1), traffic(5, 9000, 500_000, 500_000, 2), traffic(10, 80_000, 1_000_000, 1_000_000, 4))},
		{"centrifugo", "ramp-1x10000", peerFanout("centrifugo", "1", "10000", "", traffic(2, 70_000, 200_000, 200_000, 1), traffic(5, 90_000, 500_000, 400_000, 2))},
	}
	md := PeersMarkdown(runs, "gorilla\tgorilla/websocket v1.5.3\texamples/chat, built with go1.26\ncentrifugo\tcentrifugo v6.9.1\tgo install\n")
	for _, want := range []string{
		"Machine: Test CPU, 2 cores, 24.0 GiB, kernel 6.1. Go: go1.26",
		"Gateway commit: abc1234.",
		"load average at the end of the steps: 1.20 to 201.00",
		"| gateway | gateway | abc1234 | this repository | `--addr 127.0.0.1:18080` |",
		"| gorilla | broadcast | gorilla/websocket v1.5.3 | examples/chat, built with go1.26 | — |",
		"| centrifugo | centrifugo | centrifugo v6.9.1 | go install | — |",
		// columns in PeersOrder, whatever the order of the files
		"| load | gateway | gorilla | centrifugo |",
		"| load | gateway p99 ms | gateway deliv/CPU-s | gorilla p99 ms | gorilla deliv/CPU-s | centrifugo p99 ms | centrifugo deliv/CPU-s |",
		"| idle, 2,000 → 10,000 connections | 5.5 KiB (RSS 200.0 MiB at 10,000) | 20.0 KiB (RSS 200.0 MiB at 10,000) | no result |",
		"| fanout 1x2000 at 50 msg/s | 3.21 | 250,000 | 12.5, lost 10,000 of 1,000,000 (1.00%) | 198,000 | no result | no result |",
		// a broadcast server has one room: not applicable, with a note
		"| fanout 100x100 at 2000 msg/s | 20.0 | 200,000 | n/a¹ | n/a | 45.0 | 125,000 |",
		"¹ A broadcast server has one room",
		// a ramp's best step under the bound with nothing lost; none at all
		"| ramp 1x10000 at 2, 5, 10 msg/s: the best under p99 50 ms | 5/s: 9.00 | 250,000 | no result | no result | none under 50 ms (2/s: 70.0) | — |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
	// Rows in load order: idle, then fan-outs by rooms, then the ramp.
	i1, i2, i3 := strings.Index(md, "| fanout 1x2000"), strings.Index(md, "| fanout 100x100"), strings.Index(md, "| ramp 1x10000")
	if !(strings.Index(md, "| idle,") < i1 && i1 < i2 && i2 < i3) {
		t.Errorf("rows out of order:\n%s", md)
	}
}

func TestReadPeerRuns(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "peers-node-fanout-1x2000-50.json")
	if err := peerFanout("broadcast", "1", "2000", "50", traffic(50, 1000, 10, 10, 1)).WriteJSON(p); err != nil {
		t.Fatal(err)
	}
	runs, err := ReadPeerRuns(p)
	if err != nil || len(runs) != 1 || runs[0].Server != "node" || runs[0].Load != "fanout-1x2000-50" || runs[0].Result.Steps[0].Delivered != 10 {
		t.Fatalf("ReadPeerRuns = %+v, %v", runs, err)
	}
	if _, err := ReadPeerRuns(filepath.Join(dir, "fanout.json")); err == nil {
		t.Error("a file not named peers-SERVER-LOAD.json was accepted")
	}
}

// The gateway's breakdown gets a table of its own, and pinned runs stay
// out of the main table, in theirs.
func TestPeersMarkdownBreakdownAndPinned(t *testing.T) {
	st := traffic(200, 80_000, 4_000_000, 4_000_000, 8)
	st.Latency.P50 = 30_000
	st.Breakdown = &Breakdown{Publish: &Quantiles{Count: 2000, P50: 100, P99: 400_000}, QueueWait: &Quantiles{Count: 2000, P50: 12_000, P99: 45_000},
		WriteOffset: &Quantiles{Count: 9000, P50: 11_000, P99: 44_000}, BenchBusy: 0.73}
	pinned := traffic(200, 70_000, 4_000_000, 4_000_000, 10)
	pinned.BenchCPU = 9.5
	runs := []PeerRun{
		{"gateway", "fanout-1x2000-200", peerFanout("", "1", "2000", "200", st)},
		{"gorilla", "fanout-1x2000-200", peerFanout("broadcast", "1", "2000", "200", traffic(200, 100_000, 4_000_000, 4_000_000, 14))},
		{"gateway", "fanout-1x2000-200" + PinnedSuffix, peerFanout("", "1", "2000", "200", pinned)},
	}
	md := PeersMarkdown(runs, "")
	for _, want := range []string{
		"| fanout 1x2000 at 200 msg/s | 80.0 | 500,000 | 100 | 285,714 |",
		"## Where the gateway's time went",
		"| fanout 1x2000 at 200 msg/s | gateway | 0.1 / 400.0 | 12.0 / 45.0 | 11.0 / 44.0 | 30.0 / 80.0 | 73% |",
		"## Server and harness on separate cores",
		"| fanout 1x2000 at 200 msg/s | gateway | 70.0 | 400,000 | 95% |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
	if strings.Count(md, "| fanout 1x2000 at 200 msg/s |") != 3 {
		t.Errorf("the pinned run leaked into the main table:\n%s", md)
	}
}
