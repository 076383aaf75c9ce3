package figures

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// root is the repository root, relative to this package's directory.
const root = "../.."

// The full scripts/bench.sh runs. The one at 263d068 is in the tree; the four
// earlier ones were committed and later replaced, so they are read from the
// commit that added them ("commit:path").
const (
	runIdle      = "bench/results/2026-12-02-b8099ac-idle/"
	runIdleFinal = "bench/results/2026-12-02-c5941d7-idle/"
	runGOGC      = "bench/results/2026-12-02-f5f24d3-gogc/"
	runIdle20    = "bench/results/2026-12-02-afd29b4-idle/"
	runGOGC20    = "bench/results/2026-12-02-afd29b4-gogc/"
	run263       = "bench/results/2026-11-22-263d068/"
	runE15       = "72f944a:bench/results/2026-11-22-e15c191/"
	run1cf       = "0037a68:bench/results/2026-11-22-1cfd4ae/"
	run56e       = "f63c2e2:bench/results/2026-11-22-56e0a35/"
	runBB2       = "9b2ae8a:bench/results/2026-11-22-bb2b735/"

	metricsTxt = "bench/results/2026-11-22-afdc4cd-metrics-overhead.txt"
	ackTxt     = "bench/results/2026-12-02-4d36449-store-ack.txt"
	fanDir     = "bench/results/2026-12-02-e809bd8-fanout-"
	joinTxt    = "bench/results/2026-12-02-bee9ecf-join-latency.txt"
	slowDir    = "bench/results/2026-12-02-slow-readers/"
	peersMD    = "bench/results/2026-12-02-b165c36-peers/peers.md"
	passTxt    = "bench/results/2026-12-02-b165c36-pass.txt"
)

var allRuns = []string{runE15, run1cf, run56e, runBB2, run263}

// value is one figure: the file it comes from, how it is read out of that
// file, and how it is written in the README (the extractor returns the
// formatted text).
type value struct {
	path    string
	extract func(data []byte) (string, error)
}

// figure is README text that must appear in the Figures or Performance
// section: text with one %s per value, filled in from the results files.
type figure struct {
	name   string
	text   string
	values []func(t *testing.T) string
}

// one is a single value read from path.
func one(path string, extract func([]byte) (string, error)) func(t *testing.T) string {
	return func(t *testing.T) string {
		return get(t, value{path, extract})
	}
}

// span is "min-max" over the same figure read from each of paths, each end
// written as its file writes it.
func span(paths []string, extract func([]byte) (string, error)) func(t *testing.T) string {
	return func(t *testing.T) string {
		var lo, hi string
		var lov, hiv float64
		for i, p := range paths {
			s := get(t, value{p, extract})
			v := num(t, s)
			if i == 0 || v < lov {
				lo, lov = s, v
			}
			if i == 0 || v > hiv {
				hi, hiv = s, v
			}
		}
		return lo + "-" + hi
	}
}

func get(t *testing.T, v value) string {
	t.Helper()
	data := read(t, v.path)
	s, err := v.extract(data)
	if err != nil {
		t.Fatalf("%s: %v", v.path, err)
	}
	return s
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return f
}

// read returns a results file: from the tree, or, for "commit:path", from
// git. A checkout without that history (a shallow clone, no git) skips the
// figure rather than failing it.
func read(t *testing.T, path string) []byte {
	t.Helper()
	if commit, p, ok := strings.Cut(path, ":"); ok {
		cmd := exec.Command("git", "show", commit+":"+p)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Skipf("%s not readable from git history (%v): figure unchecked", path, err)
		}
		return out
	}
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// row returns field i (0-based, split on spaces) of the first line of a
// wsbench .txt table whose first field is label: wsbench's own formatting.
func row(label string, i int) func([]byte) (string, error) {
	return func(data []byte) (string, error) {
		for line := range strings.SplitSeq(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) > i && f[0] == label {
				return f[i], nil
			}
		}
		return "", fmt.Errorf("no row %q with field %d", label, i)
	}
}

// Fields of wsbench's fanout/ramp .txt rows and of connect.txt rows.
const (
	fDelivered    = 2
	fP99          = 5
	fPerCPU       = 12
	fHarnessMicro = 13
	cHandshakes   = 2
	cP99          = 5
)

// match returns submatch 1 of re.
func match(re string) func([]byte) (string, error) {
	rx := regexp.MustCompile(re)
	return func(data []byte) (string, error) {
		m := rx.FindSubmatch(data)
		if m == nil {
			return "", fmt.Errorf("no match for %s", re)
		}
		return string(m[1]), nil
	}
}

// slope is the idle scenario's RSS slope from its run README.
var slope = match(`Slope from 5,000 to 18,000 conns: \*\*([\d,]+) bytes/conn\*\*`)

// idleFigure reads an idle result's JSON: the RSS slope in bytes per
// connection between two steps (by connection count), or with from < 0 the
// median of the steps' kernel bytes per socket, rounded as the README
// writes them ("1,719").
func idleFigure(from, to int) func([]byte) (string, error) {
	return func(data []byte) (string, error) {
		var r struct {
			Steps []struct {
				Conns  int     `json:"conns"`
				RSS    int64   `json:"gateway_rss_bytes"`
				Kernel float64 `json:"kernel_bytes_per_socket"`
			} `json:"steps"`
		}
		if err := json.Unmarshal(data, &r); err != nil {
			return "", err
		}
		if from < 0 {
			var k []float64
			for _, s := range r.Steps {
				if s.Kernel > 0 && s.Conns >= 5000 {
					k = append(k, s.Kernel)
				}
			}
			if len(k) == 0 {
				return "", fmt.Errorf("no kernel figure")
			}
			sort.Float64s(k)
			m := k[len(k)/2]
			if len(k)%2 == 0 {
				m = (k[len(k)/2-1] + m) / 2
			}
			return thousands(int64(math.Round(m))), nil
		}
		rss := map[int]int64{}
		for _, s := range r.Steps {
			rss[s.Conns] = s.RSS
		}
		a, okA := rss[from]
		b, okB := rss[to]
		if !okA || !okB {
			return "", fmt.Errorf("no steps at %d and %d conns", from, to)
		}
		return thousands(int64(math.Round(float64(b-a) / float64(to-from)))), nil
	}
}

// cpuPerHandshake reads a connect result's JSON: the gateway's CPU time
// over the connections opened, in whole microseconds.
func cpuPerHandshake(data []byte) (string, error) {
	var r struct {
		Steps []struct {
			Conns int     `json:"conns"`
			CPU   float64 `json:"gateway_cpu_s"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return "", err
	}
	if len(r.Steps) == 0 || r.Steps[len(r.Steps)-1].Conns == 0 {
		return "", fmt.Errorf("no connect step")
	}
	s := r.Steps[len(r.Steps)-1]
	return strconv.FormatInt(int64(math.Round(s.CPU/float64(s.Conns)*1e6)), 10), nil
}

// thousands writes n with a comma between thousands.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// wsbench's JSON result, the fields used here.
type result struct {
	Steps []struct {
		Expected  int64 `json:"expected_deliveries"`
		Delivered int64 `json:"delivered"`
		Latency   struct {
			P50 float64 `json:"p50_us"`
			P99 float64 `json:"p99_us"`
			Max float64 `json:"max_us"`
		} `json:"latency"`
	} `json:"steps"`
}

// fromJSON reads the first step of a wsbench JSON result and formats one
// of its figures: latencies in ms, p50/p99 to 0.1 ms, max to 1 ms; lost =
// expected - delivered.
func fromJSON(what string) func([]byte) (string, error) {
	return func(data []byte) (string, error) {
		var r result
		if err := json.Unmarshal(data, &r); err != nil {
			return "", err
		}
		if len(r.Steps) == 0 {
			return "", fmt.Errorf("no steps")
		}
		s := r.Steps[0]
		switch what {
		case "p50":
			return strconv.FormatFloat(s.Latency.P50/1000, 'f', 1, 64), nil
		case "p99":
			return strconv.FormatFloat(s.Latency.P99/1000, 'f', 1, 64), nil
		case "max":
			return strconv.FormatFloat(s.Latency.Max/1000, 'f', 0, 64), nil
		case "lost":
			return strconv.FormatInt(s.Expected-s.Delivered, 10), nil
		}
		return "", fmt.Errorf("unknown figure %q", what)
	}
}

// slowRun is one slow-readers JSON result.
func slowRun(name, what string) func(t *testing.T) string {
	return one(slowDir+name+".json", fromJSON(what))
}

// bench reads a benchstat table of the metrics-overhead run: the "off"
// column (the first) of the row of benchmark name in the table of unit,
// written as the README writes it.
func bench(unit, name string) func(t *testing.T) string {
	return one(metricsTxt, func(data []byte) (string, error) {
		cur := ""
		for line := range strings.SplitSeq(string(data), "\n") {
			if strings.HasPrefix(line, "# raw") {
				break
			}
			if strings.Contains(line, "│") {
				if f := strings.Fields(strings.ReplaceAll(line, "│", " ")); len(f) > 0 && !strings.HasSuffix(f[0], ".txt") {
					cur = f[0]
				}
				continue
			}
			f := strings.Fields(line)
			if cur != unit || len(f) < 2 || f[0] != name {
				continue
			}
			if name == "geomean" {
				return f[len(f)-1], nil
			}
			return benchFmt(unit, f[1])
		}
		return "", fmt.Errorf("no %s row %q", unit, name)
	})
}

// benchFmt writes a benchstat value as the README's table does: times with
// their unit (µs, ms), ns per delivery as a number, writes per delivery as
// a fraction (100.3m -> 0.1003), bytes with KiB spelled out, allocs as an
// integer.
func benchFmt(unit, v string) (string, error) {
	scale := func(s string) (float64, string) {
		for _, suf := range []string{"Ki", "µ", "m", "n"} {
			if n, ok := strings.CutSuffix(s, suf); ok {
				f, _ := strconv.ParseFloat(n, 64)
				return f, suf
			}
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f, ""
	}
	n, suf := scale(v)
	base := strings.TrimRight(v, "Kiµmn")
	switch unit {
	case "sec/op":
		switch suf {
		case "µ":
			return base + " µs", nil
		case "m":
			return base + " ms", nil
		}
	case "sec/delivery":
		if suf == "n" {
			return base, nil
		}
	case "writes/delivery":
		switch suf {
		case "":
			return base, nil
		case "m":
			return strconv.FormatFloat(n/1000, 'f', 4, 64), nil
		}
	case "B/op":
		switch suf {
		case "":
			return base, nil
		case "Ki":
			return base + " KiB", nil
		}
	case "allocs/op":
		if suf == "" {
			return strconv.FormatFloat(n, 'f', 0, 64), nil
		}
	}
	return "", fmt.Errorf("%s value %q: format not handled", unit, v)
}

func benchRow(name string) figure {
	return figure{
		name: "in-process " + name,
		text: "| " + name + " | %s | %s | %s | %s | %s |",
		values: []func(*testing.T) string{
			bench("sec/op", name+"-2"), bench("sec/delivery", name+"-2"),
			bench("writes/delivery", name+"-2"), bench("B/op", name+"-2"),
			bench("allocs/op", name+"-2"),
		},
	}
}

// joinRow is a row of the join-latency table: the span of p50 and of p99
// over the runs of one sub-benchmark of BenchmarkJoinUnderPublishLoad.
func joinRow(label, name string) figure {
	return figure{
		name: "join latency " + name,
		text: "| " + label + " | %s | %s |",
		values: []func(*testing.T) string{
			one(joinTxt, benchMetricSpan("BenchmarkJoinUnderPublishLoad/"+name+"-2", "p50-ms")),
			one(joinTxt, benchMetricSpan("BenchmarkJoinUnderPublishLoad/"+name+"-2", "p99-ms")),
		},
	}
}

// benchMetricSpan is "min-max" (to 0.01) of a custom metric over every
// line of benchmark name in go test -bench output.
func benchMetricSpan(name, unit string) func([]byte) (string, error) {
	return benchMetricSpanFmt(name, unit, func(lo, hi float64) string { return fmt.Sprintf("%.2f-%.2f", lo, hi) })
}

// ackRow is a row of the store table: the spans of msgs/s (in thousands)
// and of p99 over the runs of one BenchmarkPublishAck sub-benchmark.
func ackRow(label, name string) figure {
	b := "BenchmarkPublishAck/" + name + "-2"
	return figure{
		name: "store acks " + name,
		text: "| " + label + " | %s | %s | %s |",
		values: []func(*testing.T) string{
			one(ackTxt, benchMetricSpanFmt(b, "msgs/s", func(lo, hi float64) string {
				return fmt.Sprintf("%.1fk-%.1fk", lo/1000, hi/1000)
			})),
			one(ackTxt, benchMetricSpan(b, "p50-ms")),
			one(ackTxt, benchMetricSpan(b, "p99-ms")),
		},
	}
}

// benchMetricSpanFmt is benchMetricSpan with its own formatting.
func benchMetricSpanFmt(name, unit string, format func(lo, hi float64) string) func([]byte) (string, error) {
	return func(data []byte) (string, error) {
		lo, hi, n := 0.0, 0.0, 0
		for line := range strings.SplitSeq(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != name {
				continue
			}
			for i := 1; i+1 < len(f); i++ {
				if f[i+1] != unit {
					continue
				}
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					return "", err
				}
				if n == 0 || v < lo {
					lo = v
				}
				if n == 0 || v > hi {
					hi = v
				}
				n++
			}
		}
		if n == 0 {
			return "", fmt.Errorf("no %s of %s", unit, name)
		}
		return format(lo, hi), nil
	}
}

// paths is each of files in each of runs.
func paths(runs []string, files ...string) []string {
	var out []string
	for _, r := range runs {
		for _, f := range files {
			out = append(out, r+f)
		}
	}
	return out
}

// harnessSpan is "min-max" of the harness CPU per delivery over every step
// row of the given wsbench fanout/ramp .txt files, as wsbench writes it.
func harnessSpan(files []string) func(t *testing.T) string {
	return func(t *testing.T) string {
		var lo, hi string
		var lov, hiv float64
		for _, p := range files {
			for line := range strings.SplitSeq(string(read(t, p)), "\n") {
				f := strings.Fields(line)
				if len(f) != 14 || f[0] == "step" {
					continue
				}
				x, err := strconv.ParseFloat(f[fHarnessMicro], 64)
				if err != nil {
					continue
				}
				if lo == "" || x < lov {
					lo, lov = f[fHarnessMicro], x
				}
				if hi == "" || x > hiv {
					hi, hiv = f[fHarnessMicro], x
				}
			}
		}
		if lo == "" {
			t.Fatalf("no step rows in %v", files)
		}
		return lo + "-" + hi
	}
}

func figures() []figure {
	type v = func(*testing.T) string
	slowRow := func(payload, slow string, names ...string) figure {
		var vals []v
		for _, what := range []string{"p50", "p99", "max"} {
			for _, n := range names {
				vals = append(vals, slowRun(n, what))
			}
		}
		vals = append(vals, slowRun(names[0], "lost"))
		cell := "%s"
		if len(names) == 2 {
			cell = "%s / %s"
		}
		return figure{
			name:   "slow readers " + payload + " " + slow,
			text:   "| " + payload + " | " + slow + " | " + cell + " | " + cell + " | " + cell + " | %s |",
			values: vals,
		}
	}
	idleRuns := func(dir, kind string) []string {
		var out []string
		for i := 1; i <= 3; i++ {
			out = append(out, fmt.Sprintf("%s%s-%d.json", dir, kind, i))
		}
		return out
	}
	idleRowIn := func(dir, label, kind string) figure {
		return figure{
			name: "idle " + dir + kind,
			text: "| " + label + " | %s B | %s B | %s B |",
			values: []v{
				span(idleRuns(dir, kind), idleFigure(5000, 15000)),
				span(idleRuns(dir, kind), idleFigure(1000, 19000)),
				span(idleRuns(dir, kind), idleFigure(-1, 0)),
			},
		}
	}
	idleRow := func(label, kind string) figure { return idleRowIn(runIdle, label, kind) }
	gogcRow := func(label, shape, step string) figure {
		var vals []v
		for _, g := range []string{"100", "50"} {
			for i := 1; i <= 2; i++ {
				vals = append(vals, one(fmt.Sprintf("%s%s-gogc%s-%d.txt", runGOGC, shape, g, i), row(step, fPerCPU)))
			}
		}
		return figure{"gogc " + shape, "| " + label + " | %s / %s | %s / %s |", vals}
	}
	// The GOGC trade-off at afd29b4: CPU per handshake (connect) and
	// deliveries per CPU-second (fanout), two rounds each.
	gogcCostRow := func(g, label string) figure {
		vals := []v{}
		for i := 1; i <= 2; i++ {
			vals = append(vals, one(fmt.Sprintf("%sconnect-gogc%s-%d.json", runGOGC20, g, i), cpuPerHandshake))
		}
		for _, shape := range []struct{ name, step string }{{"1x2000", "1x2000@200"}, {"100x100", "100x100@2000"}} {
			for i := 1; i <= 2; i++ {
				vals = append(vals, one(fmt.Sprintf("%s%s-gogc%s-%d.txt", runGOGC20, shape.name, g, i), row(shape.step, fPerCPU)))
			}
		}
		return figure{"gogc cost " + g, "| " + label + " | %s / %s µs | %s / %s | %s / %s |", vals}
	}
	return []figure{
		idleRowIn(runIdle20, "afd29b4, memory store (`--data-dir=`)", "memory"),
		idleRowIn(runIdle20, "afd29b4, durable store (default)", "disk"),
		idleRowIn(runIdle20, "afd29b4, memory store, `GOGC=25`", "memory-gogc25"),
		idleRowIn(runIdle20, "afd29b4, memory store, `GOGC=10`", "memory-gogc10"),
		idleRowIn(runIdle20, "bd913af, memory store, same host", "before-bd913af-memory"),
		gogcCostRow("50", "50 (default)"),
		gogcCostRow("25", "25"),
		gogcCostRow("10", "10"),
		gogcRow("1x2000 at 200 msg/s", "1x2000", "1x2000@200"),
		gogcRow("100x100 at 2,000 msg/s", "100x100", "100x100@2000"),
		idleRowIn(runIdleFinal, "c5941d7, memory store (`--data-dir=`)", "memory"),
		idleRowIn(runIdleFinal, "c5941d7, durable store (default)", "disk"),
		idleRow("memory store (`--data-dir=`)", "memory"),
		idleRow("durable store (default)", "disk"),
		idleRow("memory store, `GOGC=50`", "memory-gogc50"),
		benchRow("Fanout1k"),
		benchRow("Fanout10k"),
		benchRow("FanoutBurst10k"),
		{"in-process metrics on vs off", "(geomean %s time per delivery)", []v{bench("sec/delivery", "geomean")}},

		// Each line's figures from the run in the tree are checked apart
		// from its ranges over the earlier runs, which need the git
		// history: without it only the latter are skipped.
		{"idle bytes per connection", "**%s B/conn** process RSS (", []v{
			one(run263+"README.md", slope),
		}},
		{"idle conns per GiB", "over the five runs; %s conns per GiB)", []v{
			one(run263+"README.md", match(`([\d,]+) conns per GiB of process memory`)),
		}},
		{"idle range over runs", "(%s over the five runs;", []v{
			span(paths(allRuns, "README.md"), slope),
		}},
		{"connect rate", "| %s handshakes/s, p99 %s ms (", []v{
			one(run263+"connect.txt", row("18000", cHandshakes)),
			one(run263+"connect.txt", row("18000", cP99)),
		}},
		{"connect range over runs", "(%s/s over the five runs; %s/s with p99 %s ms in four of them, %s/s with p99 %s ms in the run at `56e0a35`) |", []v{
			span(paths(allRuns, "connect.txt"), row("18000", cHandshakes)),
			span(paths([]string{runE15, run1cf, runBB2, run263}, "connect.txt"), row("18000", cHandshakes)),
			span(paths([]string{runE15, run1cf, runBB2, run263}, "connect.txt"), row("18000", cP99)),
			one(run56e+"connect.txt", row("18000", cHandshakes)),
			one(run56e+"connect.txt", row("18000", cP99)),
		}},
		{"fanout 1x2000", "| %s deliveries/s, **%s per gateway CPU-s** (", []v{
			one(run263+"fanout-1x2000.txt", row("1x2000@200", fDelivered)),
			one(run263+"fanout-1x2000.txt", row("1x2000@200", fPerCPU)),
		}},
		{"fanout 1x2000 latency and loss", "), p50 %s / p99 %s ms, %s lost / gaps / dups |", []v{
			one(run263+"fanout-1x2000.json", func(b []byte) (string, error) {
				s, err := fromJSON("p50")(b)
				if err != nil {
					return "", err
				}
				f, _ := strconv.ParseFloat(s, 64)
				return strconv.FormatFloat(f, 'f', 0, 64), nil
			}),
			one(run263+"fanout-1x2000.txt", row("1x2000@200", fP99)),
			one(run263+"fanout-1x2000.json", fromJSON("lost")),
		}},
		{"fanout 1x2000 range over runs", "(%s over the five runs; %s in the three with `--coalesce-max`), p50", []v{
			span(paths(allRuns, "fanout-1x2000.txt"), row("1x2000@200", fPerCPU)),
			span(paths([]string{run56e, runBB2, run263}, "fanout-1x2000.txt"), row("1x2000@200", fPerCPU)),
		}},
		{"coalescing before/after", "(1 x 2,000: %s and %s per CPU-s in the two\ncommitted runs before `--coalesce-max`, %s in the three\nwith it;", []v{
			one(run1cf+"fanout-1x2000.txt", row("1x2000@200", fPerCPU)),
			one(runE15+"fanout-1x2000.txt", row("1x2000@200", fPerCPU)),
			span(paths([]string{run56e, runBB2, run263}, "fanout-1x2000.txt"), row("1x2000@200", fPerCPU)),
		}},
		{"fanout 10x500", "| %s/s, %s per CPU-s, p99 %s ms, %s lost |", []v{
			one(run263+"fanout-10x500.txt", row("10x500@400", fDelivered)),
			one(run263+"fanout-10x500.txt", row("10x500@400", fPerCPU)),
			one(run263+"fanout-10x500.txt", row("10x500@400", fP99)),
			one(run263+"fanout-10x500.json", fromJSON("lost")),
		}},
		{"fanout 100x100", "| %s/s, %s per CPU-s, p99 %s ms, %s lost |", []v{
			one(run263+"fanout-100x100.txt", row("100x100@2000", fDelivered)),
			one(run263+"fanout-100x100.txt", row("100x100@2000", fPerCPU)),
			one(run263+"fanout-100x100.txt", row("100x100@2000", fP99)),
			one(run263+"fanout-100x100.json", fromJSON("lost")),
		}},
		{"ramp 100x100 best rate", "| **%s deliveries/s** (%s msg/s, p99 %s ms); at 1,600 msg/s p99 %s ms |", []v{
			one(run263+"ramp-100x100.txt", match(`best sustained: ([\d,]+) deliveries/s at step 800/s`)),
			one(run263+"ramp-100x100.txt", row("800/s", 1)),
			one(run263+"ramp-100x100.txt", row("800/s", fP99)),
			one(run263+"ramp-100x100.txt", row("1600/s", fP99)),
		}},
		{"ramp 1x10000", "| none: at 2 msg/s p99 is %s ms (see below) |", []v{
			one(run263+"ramp-1x10000.txt", row("2/s", fP99)),
		}},
		{"ramp 1x10000 has no best rate", "| ramp 1 x 10,000, same bound | %s:", []v{
			one(run263+"ramp-1x10000.txt", match(`best sustained: (none) under p99 50 ms`)),
		}},
		{"harness cost", "| %s µs of harness CPU per delivery (run at `263d068`; each result has its own) |", []v{
			harnessSpan(paths([]string{run263}, "fanout-1x2000.txt", "fanout-10x500.txt", "fanout-100x100.txt",
				"ramp-100x100.txt", "ramp-1x10000.txt")),
		}},
		{"light-load p99 after the linger rule", "(100 x 100 at 400 msg/s: p99 %s ms at `263d068`;", []v{
			one(run263+"ramp-100x100.txt", row("400/s", fP99)),
		}},
		{"before the linger rule", "p99\n%s ms, and the ramp's best was %s deliveries/s)", []v{
			one(runBB2+"ramp-100x100.txt", row("400/s", fP99)),
			one(runBB2+"ramp-100x100.txt", match(`best sustained: ([\d,]+) deliveries/s`)),
		}},
		{"harness CPU per delivery, 1x10000", "needs %s µs of CPU per delivery (ramp 1 x 10,000)", []v{
			one(run263+"ramp-1x10000.txt", row("2/s", fHarnessMicro)),
		}},

		{"fan-out p99 by store", "| %s | %s | %s | %s |", []v{
			func(*testing.T) string { return "memory (`--data-dir \"\"`)" },
			one(fanDir+"memory/fanout-1x2000.json", fromJSON("p99")),
			one(fanDir+"memory/fanout-10x500.json", fromJSON("p99")),
			one(fanDir+"memory/fanout-100x100.json", fromJSON("p99")),
		}},
		{"fan-out p99, default store", "| disk, `--history-sync always` (default) | %s | %s | %s |", []v{
			one(fanDir+"disk/fanout-1x2000.json", fromJSON("p99")),
			one(fanDir+"disk/fanout-10x500.json", fromJSON("p99")),
			one(fanDir+"disk/fanout-100x100.json", fromJSON("p99")),
		}},
		{"fan-out p99, sync none", "| disk, `--history-sync none` | %s | %s | %s |", []v{
			one(fanDir+"disk-sync-none/fanout-1x2000.json", fromJSON("p99")),
			one(fanDir+"disk-sync-none/fanout-10x500.json", fromJSON("p99")),
			one(fanDir+"disk-sync-none/fanout-100x100.json", fromJSON("p99")),
		}},
		ackRow("memory (`--data-dir \"\"`)", "memory"),
		ackRow("disk, `--history-sync always` (default)", "disk-always"),
		ackRow("disk, `--history-sync interval`", "disk-interval"),
		ackRow("disk, `--history-sync none`", "disk-none"),
		ackRow("Redis (cluster mode)", "redis"),
		joinRow("memory, fresh room", "memory/fresh"),
		joinRow("memory, busy room", "memory/busy"),
		joinRow("Redis, fresh room", "redis/fresh"),
		joinRow("Redis, busy room", "redis/busy"),

		slowRow("100 B", "0", "after-p100-slow0-r1", "after-p100-slow0-r2"),
		slowRow("100 B", "200", "after-p100-slow200-r1", "after-p100-slow200-r2"),
		slowRow("1000 B", "0 (30 s)", "after-p1000-slow0"),
		slowRow("1000 B", "200 (90 s)", "after-p1000-slow200"),
		{"slow readers: kernel TCP memory before", "200 of them held %s MiB of kernel\nTCP memory to the end of the run", []v{
			one(slowDir+"README.md", match(`kernel TCP memory, peak \(whole machine\) \| (\d+) MiB, held to the end`)),
		}},
		{"slow readers: closed at", "now all 200 are closed at ~%s s and the\nkernel's TCP memory is back to %s MiB at %s s", []v{
			one(slowDir+"README.md", match(`\| at ~(\d+) s \(1 MiB unsent`)),
			one(slowDir+"README.md", match(`back to (\d+) MiB at \d+ s`)),
			one(slowDir+"README.md", match(`back to \d+ MiB at (\d+) s`)),
		}},
		// The side-by-side tables (issue 16): each README row is the row
		// of the committed peers.md.
		peerRow("idle, 2,000 → 10,000 connections"),
		peerRow("fanout 1x2000 at 50 msg/s"),
		peerRow("fanout 1x2000 at 200 msg/s"),
		peerRow("fanout 100x100 at 2000 msg/s"),
		peerRow("ramp 1x10000 at 2, 5, 10, 20, 40, 80 msg/s: the best under p99 50 ms"),
		peerRows("fanout 1x2000 at 50 msg/s | gatewaymem"),
		peerRows("fanout 1x2000 at 200 msg/s | gateway "),
		peerRows("fanout 100x100 at 2000 msg/s | gatewaymem"),
		{"pass benchmark: split no faster", "measures a pass at %s-%s µs per member", []v{
			one(passTxt, benchNsPerMember(lower)), one(passTxt, benchNsPerMember(higher)),
		}},
		{"slow readers: held before", "a\nnon-reading member held ~%s MiB", []v{
			one(slowDir+"README.md", match(`closed with 4001 after\s+~([\d.]+) MiB`)),
		}},
	}
}

// sections returns README.md's "## Figures" and "## Performance" sections.
// FIGURES_README names another README to check (a scratch copy, to see the
// test fail on a changed figure).
func sections(t *testing.T) string {
	t.Helper()
	path := filepath.Join(root, "README.md")
	if p := os.Getenv("FIGURES_README"); p != "" {
		path = p
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, h := range []string{"\n## Figures\n", "\n## Performance\n"} {
		i := bytes.Index(data, []byte(h))
		if i < 0 {
			t.Fatalf("README.md has no %q section", strings.TrimSpace(h))
		}
		rest := data[i+1:]
		if j := bytes.Index(rest[len(h)-1:], []byte("\n## ")); j >= 0 {
			rest = rest[:len(h)-1+j+1]
		}
		out = append(out, rest...)
	}
	return string(out)
}

func TestREADMEFigures(t *testing.T) {
	readme := sections(t)
	for _, f := range figures() {
		t.Run(f.name, func(t *testing.T) {
			args := make([]any, len(f.values))
			for i, v := range f.values {
				args[i] = v(t)
			}
			want := fmt.Sprintf(f.text, args...)
			if !strings.Contains(readme, want) {
				t.Errorf("README.md's Figures/Performance sections lack the text the committed results give:\n%s", want)
			}
		})
	}
}

// peerRow is the first row of peers.md whose first cell is label, whole.
func peerRow(label string) figure {
	return figure{"peers: " + label, "%s", []func(t *testing.T) string{one(peersMD, match(`(?m)^(\| `+regexp.QuoteMeta(label)+` \|.*)$`))}}
}

// peerRows is every row of peers.md that starts with prefix (a load and a
// server: its breakdown rows and pinned rows), each in the README.
func peerRows(prefix string) figure {
	return figure{"peers: " + prefix, "%s", []func(t *testing.T) string{func(t *testing.T) string {
		data := read(t, peersMD)
		rx := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(prefix) + `.*$`)
		all := rx.FindAll(data, -1)
		if len(all) == 0 {
			t.Fatalf("no row %q in %s", prefix, peersMD)
		}
		return string(all[len(all)-1]) // the README quotes the last such row
	}}}
}

// benchNsPerMember is the lowest or highest ns/member of a BenchmarkPass
// output, in µs rounded down or up to a whole number.
func benchNsPerMember(pick func(a, b float64) float64) func([]byte) (string, error) {
	rx := regexp.MustCompile(`(\d+) ns/member`)
	return func(data []byte) (string, error) {
		ms := rx.FindAllSubmatch(data, -1)
		if len(ms) == 0 {
			return "", fmt.Errorf("no ns/member in the output")
		}
		v, _ := strconv.ParseFloat(string(ms[0][1]), 64)
		for _, m := range ms[1:] {
			x, _ := strconv.ParseFloat(string(m[1]), 64)
			v = pick(v, x)
		}
		return strconv.Itoa(int(v / 1000)), nil
	}
}

func lower(a, b float64) float64 {
	if a < b {
		return a
	}
	return b
}

func higher(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}
