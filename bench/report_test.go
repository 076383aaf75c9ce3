package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

func synthLatency(p50, p90, p99, p999, max float64) *Latency {
	return &Latency{Count: 1000, P50: p50, P90: p90, P99: p99, P999: p999, Max: max}
}

// syntheticResults is one result per scenario with round figures.
func syntheticResults() []*Result {
	m := Machine{CPU: "Test CPU @ 2.0GHz", Cores: 2, MemBytes: 24 << 30, Kernel: "6.1.0-test", GoVersion: "go1.26.8", Host: "box"}
	g := GatewayInfo{Addr: "127.0.0.1:8080", Commit: "abc1234", Flags: []string{"--rate-limit=0", "--max-conns=20000"}}
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	mk := func(scenario string, params map[string]string, steps ...Step) *Result {
		at = at.Add(time.Minute)
		return &Result{Scenario: scenario, Started: at, Machine: m, Gateway: g, Params: params, Steps: steps}
	}
	return []*Result{
		// Out of scenario order on purpose: the report orders sections.
		mk("ramp", map[string]string{"rooms": "1", "members": "10000", "p99_bound_ms": "50"},
			Step{Label: "r1", TargetRate: 100, Duration: 10, Expected: 10_000_000, Delivered: 10_000_000, GatewayCPU: 8, BenchCPU: 5, Latency: synthLatency(1_000, 2_000, 5_000, 9_000, 12_000)},
			Step{Label: "r2", TargetRate: 200, Duration: 10, Expected: 20_000_000, Delivered: 20_000_000, GatewayCPU: 14, BenchCPU: 9, Latency: synthLatency(2_000, 8_000, 31_000, 45_000, 60_000)},
			Step{Label: "r3", TargetRate: 300, Duration: 10, Expected: 30_000_000, Delivered: 29_000_000, GatewayCPU: 19, BenchCPU: 14, Latency: synthLatency(40_000, 90_000, 180_000, 250_000, 300_000)},
		),
		// As cmd/wsbench records them: every result carries rooms and
		// members, and idle starts with a step at 0 connections.
		mk("idle", map[string]string{"rooms": "100", "members": "2000"},
			// The kernel's bytes per socket: none at 1k (the slab shrank),
			// 3,600 and 3,800 B after.
			Step{Label: "0", GatewayRSS: 16 << 20, SocketsInUse: 2, KernelSlab: 140 << 20},
			Step{Label: "1k", Conns: 1000, GatewayRSS: 20 << 20, SockMemPages: 10, SocketsInUse: 1002, KernelSlab: 139 << 20},
			Step{Label: "5k", Conns: 5000, GatewayRSS: 20<<20 + 4000*2048, BytesPerConn: 2048, SockMemPages: 25, SocketsInUse: 5002,
				KernelSlab: 139<<20 + 4000*3600, KernelBytesPerSocket: 3600},
			Step{Label: "18k", Conns: 18000, GatewayRSS: 20<<20 + 17000*2048, BytesPerConn: 2048, SockMemPages: 256, SocketsInUse: 18002,
				KernelSlab: 139<<20 + 4000*3600 + 13000*3800, KernelBytesPerSocket: 3800},
		),
		mk("connect", map[string]string{"conns": "18000", "rooms": "1", "members": "2000"},
			Step{Label: "connect", Conns: 18000, Duration: 4, Handshakes: 18000, Latency: synthLatency(800, 1_500, 3_250, 7_000, 9_500)},
		),
		mk("fanout", map[string]string{"rooms": "1", "members": "2000", "rate": "200"},
			Step{Label: "200/s", TargetRate: 200, Conns: 2001, Duration: 10, Sent: 2000, Expected: 4_000_000, Delivered: 4_000_000, GatewayCPU: 3.2, BenchCPU: 4, Latency: synthLatency(1_200, 2_400, 4_800, 9_600, 15_000)},
		),
		mk("dm", map[string]string{"pairs": "500"},
			Step{Label: "dm", TargetRate: 1000, Duration: 10, Expected: 10_000, Delivered: 10_000, GatewayCPU: 0.5, Latency: synthLatency(300, 500, 900, 1_200, 2_000)},
		),
		mk("churn", map[string]string{"rooms": "10", "members": "100"},
			Step{Label: "churn", TargetRate: 100, Duration: 10, Handshakes: 5_000, Expected: 1_000_000, Delivered: 999_000, Duplicates: 2, GatewayCPU: 2, Latency: synthLatency(1_000, 2_000, 3_000, 4_000, 5_000)},
		),
	}
}

func TestWriteReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if err := WriteReport(dir, syntheticResults()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)

	for _, png := range []string{"idle-memory.png", "ramp-1x10000-latency.png", "fanout-1x2000-latency.png"} {
		f, err := os.ReadFile(filepath.Join(dir, png))
		if err != nil {
			t.Errorf("chart %s: %v", png, err)
			continue
		}
		if !bytes.HasPrefix(f, pngSignature) || len(f) < 1000 {
			t.Errorf("%s is not a PNG (%d bytes)", png, len(f))
		}
		if !strings.Contains(md, "]("+png+")") {
			t.Errorf("README does not link %s", png)
		}
	}

	for _, want := range []string{
		// Header: machine, gateway, date.
		"| CPU | Test CPU @ 2.0GHz |", "| cores | 2 |", "| memory | 24.0 GiB |",
		"| kernel | 6.1.0-test |", "| Go | go1.26.8 |", "| gateway commit | abc1234 |",
		"`--rate-limit=0 --max-conns=20000`", "2026-03-04 10:01 UTC to 2026-03-04 10:06 UTC",
		// Idle: RSS 20 MiB + 17000 x 2 KiB = 53.2 MiB, 2,048 B/conn,
		// 1 GiB / 2048 = 524,288 conns per GiB; 256 pages x 4096 = 1.00 MiB;
		// 3,800 kernel bytes per socket, none measured at 1k.
		"| step | conns | gateway RSS (MiB) | bytes/conn (slope) | conns per GiB | kernel TCP mem (MiB) | TCP sockets | kernel B/socket |",
		"| 1k | 1,000 | 20.0 | — | — | 0.04 | 1,002 | — |",
		"| 18k | 18,000 | 53.2 | 2,048 | 524,288 | 1.00 | 18,002 | 3,800 |",
		// The plan's figure: the median of 3,600 and 3,800.
		"The capacity plan uses 3,700 kernel bytes/socket (measured: idle result of 2026-03-04 10:02, median of 2 step(s)",
		"Slope from 5,000 to 18,000 conns: **2,048 bytes/conn**, 524,288 conns per GiB",
		// Connect: 18,000 handshakes in 4 s.
		"| connect | 18,000 | 18,000 | 4,500 | 0.800 | 1.50 | 3.25 | 7.00 | 9.50 | 0 |",
		// Fanout: 400,000 delivered/s, 4,000,000 / 3.2 CPU-s = 1,250,000 per
		// CPU-second; harness 4 s / 4,000,000 = 1 µs per delivery.
		"| 200/s | 1x2000 | 200 | 400,000 | 1.20 | 2.40 | 4.80 | 9.60 | 15.0 | 0 | 0 | 0 | 3.20 | 1,250,000 | 1.00 |",
		// Ramp: r3 lost 1,000,000 and breaks the bound; r2 is the best.
		"| r3 | 1x10000 | 300 | 2,900,000 | 40.0 | 90.0 | 180 | 250 | 300 | 0 | 0 | 1,000,000 |",
		"**Best sustained rate: 2,000,000 deliveries/s** (step r2, target 200 msg/s, p99 31.0 ms under the 50 ms bound",
		// dm and churn.
		"| dm | 500 pairs | 1,000 | 1,000 |",
		"| churn | 10x100 | 100 | 99,900 |", "| 2.00 | 499,500 | — | 500 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("README lacks %q", want)
		}
	}
	// Sections in scenario order.
	last := -1
	for _, s := range []string{"## idle\n", "## connect\n", "## fanout: 1x2000\n", "## ramp: 1x10000\n", "## dm: 500 pairs\n", "## churn: 10x100\n"} {
		i := strings.Index(md, s)
		if i < 0 || i < last {
			t.Errorf("section %q missing or out of order", s)
		}
		last = i
	}
	if t.Failed() {
		t.Logf("README.md:\n%s", md)
	}
}

func TestWriteReportEdges(t *testing.T) {
	// Two ramps of the same shape get distinct chart names; a step without
	// latency, or a single step, still plots; no figures at all writes no
	// chart; nil results are skipped.
	rs := []*Result{
		{Scenario: "ramp", Params: map[string]string{"rooms": "100", "members": "100"}, Steps: []Step{
			{Label: "only", TargetRate: 1000, Duration: 1, Delivered: 10, Expected: 10, Latency: synthLatency(50_000, 60_000, 70_000, 80_000, 90_000)},
			{Label: "none", TargetRate: 2000},
		}},
		{Scenario: "ramp", Params: map[string]string{"rooms": "100", "members": "100"}, Steps: []Step{
			{Label: "a", Latency: synthLatency(1, 1, 1, 1, 1)},
			{Label: "b", Latency: synthLatency(100, 200, 300, 400, 500)},
		}},
		nil,
		{Scenario: "fanout"},
		{Scenario: "idle", Steps: []Step{{Label: "no RSS", Conns: 10}}},
		{Scenario: "idle", Steps: []Step{{Label: "one", Conns: 10, GatewayRSS: 1 << 20}}},
	}
	dir := t.TempDir()
	if err := WriteReport(dir, rs); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "README.md"))
	for _, png := range []string{"ramp-100x100-latency.png", "ramp-100x100-2-latency.png", "idle-memory.png"} {
		f, err := os.ReadFile(filepath.Join(dir, png))
		if err != nil || !bytes.HasPrefix(f, pngSignature) {
			t.Errorf("chart %s: %v", png, err)
		}
	}
	for _, png := range []string{"fanout-latency.png", "idle-2-memory.png"} {
		if _, err := os.Stat(filepath.Join(dir, png)); err == nil {
			t.Errorf("%s written for a result without figures", png)
		}
	}
	if !strings.Contains(string(md), "**Best sustained rate:** none") {
		t.Errorf("the first ramp's p99 of 70 ms is over the 50 ms bound, yet:\n%s", md)
	}
	if err := WriteReport(t.TempDir(), nil); err != nil {
		t.Errorf("no results: %v", err)
	}
}

func TestBestSustainedBound(t *testing.T) {
	r := &Result{Scenario: "ramp", Steps: []Step{
		{Label: "a", Duration: 1, Delivered: 100, Latency: synthLatency(1, 1, 20_000, 1, 1)},
		{Label: "b", Duration: 1, Delivered: 200, Latency: synthLatency(1, 1, 80_000, 1, 1)},
		{Label: "c", Duration: 1, Delivered: 300, Duplicates: 1, Latency: synthLatency(1, 1, 1_000, 1, 1)},
	}}
	for _, tc := range []struct {
		bound string
		want  string
	}{{"", "a"}, {"100", "b"}, {"100ms", "b"}, {"10", ""}} {
		r.Params = map[string]string{"p99_bound_ms": tc.bound}
		s, _ := r.BestSustained()
		got := ""
		if s != nil {
			got = s.Label
		}
		if got != tc.want {
			t.Errorf("bound %q: best %q, want %q", tc.bound, got, tc.want)
		}
	}
}

func TestTable(t *testing.T) {
	var buf bytes.Buffer
	for _, r := range syntheticResults() {
		Table(&buf, r)
	}
	out := buf.String()
	for _, want := range []string{
		"ramp 1x10000  (Test CPU @ 2.0GHz, 2 cores, gateway abc1234)",
		"best sustained: 2,000,000 deliveries/s at step r2",
		"524,288", "1,250,000", "4,500",
		"k B/socket",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Table output lacks %q:\n%s", want, out)
		}
	}
	// The idle table's last column is the kernel bytes per socket.
	last := ""
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "18k" {
			last = f[len(f)-1]
		}
	}
	if last != "3,800" {
		t.Errorf("idle step 18k ends in %q, want its 3,800 kernel bytes/socket:\n%s", last, out)
	}
}

// A step's latency breakdown shows in both the table and the Markdown.
func TestBreakdownReported(t *testing.T) {
	r := syntheticResults()[0] // the ramp
	r.Steps[0].Breakdown = &Breakdown{QueueWait: &Quantiles{Count: 10, P50: 12_300, P99: 45_600}, BenchBusy: 0.5}
	var buf bytes.Buffer
	Table(&buf, r)
	want := "publish -, queue wait 12.3 / 45.6, write offset - ms (p50 / p99); harness busy 50%"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, buf.String())
	}
	dir := t.TempDir()
	if err := WriteReport(dir, []*Result{r}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), want) {
		t.Errorf("report lacks %q:\n%s", want, md)
	}
}
