package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// DefaultP99BoundMs is the ramp's p99 bound when its result does not record
// one in Params["p99_bound_ms"].
const DefaultP99BoundMs = 50

// reportOrder is the order of the report's sections.
var reportOrder = []string{"idle", "connect", "fanout", "ramp", "dm", "churn"}

// WriteReport writes a Markdown summary of results to dir/README.md and its
// charts beside it as PNG files: memory versus connections for each idle
// result (idle-memory.png), and latency percentiles per step for each
// fanout and ramp result (fanout-<label>-latency.png,
// ramp-<label>-latency.png). dir is created if needed; existing files of
// the same names are replaced.
func WriteReport(dir string, results []*Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rs := make([]*Result, 0, len(results))
	for _, r := range results {
		if r != nil {
			rs = append(rs, r)
		}
	}
	sort.SliceStable(rs, func(i, j int) bool {
		return scenarioRank(rs[i].Scenario) < scenarioRank(rs[j].Scenario)
	})

	var b strings.Builder
	writeHeader(&b, rs)
	names := map[string]bool{}
	for _, r := range rs {
		fmt.Fprintf(&b, "## %s\n\n", sectionTitle(r))
		writeContext(&b, r, rs[0])
		switch r.Scenario {
		case "idle":
			writeIdle(&b, r)
			name := chartName(names, "idle", r, "memory")
			ok, err := memoryChart(filepath.Join(dir, name), r)
			if err != nil {
				return fmt.Errorf("bench: %s: %w", name, err)
			}
			if ok {
				fmt.Fprintf(&b, "![memory versus connections](%s)\n\n", name)
			} else {
				delete(names, name)
			}
		case "connect":
			writeConnect(&b, r)
		default:
			writeTraffic(&b, r)
			for i := range r.Steps {
				if bd := r.Steps[i].Breakdown; bd != nil {
					fmt.Fprintf(&b, "Breakdown of %s (the gateway's /metrics): %s.\n\n", r.Steps[i].Label, bd)
				}
			}
			writeTimelines(&b, r)
			if r.Scenario == "ramp" {
				writeBest(&b, r)
			}
			if r.Scenario == "fanout" || r.Scenario == "ramp" {
				name := chartName(names, r.Scenario, r, "latency")
				ok, err := latencyChart(filepath.Join(dir, name), r)
				if err != nil {
					return fmt.Errorf("bench: %s: %w", name, err)
				}
				if ok {
					fmt.Fprintf(&b, "![latency percentiles per step](%s)\n\n", name)
				} else {
					delete(names, name)
				}
			}
		}
	}
	return os.WriteFile(filepath.Join(dir, "README.md"), []byte(b.String()), 0o644)
}

func scenarioRank(s string) int {
	for i, x := range reportOrder {
		if x == s {
			return i
		}
	}
	return len(reportOrder)
}

// writeHeader writes the title and the machine and gateway of the first
// result; sections whose result ran elsewhere say so.
func writeHeader(b *strings.Builder, rs []*Result) {
	b.WriteString("# wsbench results\n\n")
	if len(rs) == 0 {
		b.WriteString("No results.\n")
		return
	}
	first, last := rs[0].Started, rs[0].Started
	for _, r := range rs {
		if r.Started.Before(first) {
			first = r.Started
		}
		if r.Started.After(last) {
			last = r.Started
		}
	}
	m, g := rs[0].Machine, rs[0].Gateway
	b.WriteString("| | |\n| --- | --- |\n")
	row := func(k, v string) {
		if v == "" {
			v = "—"
		}
		fmt.Fprintf(b, "| %s | %s |\n", k, mdEscape(v))
	}
	date := first.UTC().Format("2006-01-02 15:04 MST")
	if !last.Equal(first) {
		date += " to " + last.UTC().Format("2006-01-02 15:04 MST")
	}
	row("date", date)
	row("CPU", m.CPU)
	row("cores", fmtCount(int64(m.Cores)))
	row("memory", fmtGiB(m.MemBytes))
	row("kernel", m.Kernel)
	row("Go", m.GoVersion)
	row("host", m.Host)
	row("gateway commit", g.Commit)
	row("gateway flags", mdCode(strings.Join(g.Flags, " ")))
	row("gateway address", g.Addr)
	b.WriteString("\n")
}

// writeContext writes when r ran, its parameters and notes, and its machine
// or gateway when they differ from the header's.
func writeContext(b *strings.Builder, r, head *Result) {
	fmt.Fprintf(b, "Started %s", r.Started.UTC().Format("2006-01-02 15:04:05 MST"))
	if len(r.Params) > 0 {
		keys := make([]string, 0, len(r.Params))
		for k := range r.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + r.Params[k]
		}
		fmt.Fprintf(b, "; parameters %s", mdCode(strings.Join(parts, " ")))
	}
	b.WriteString(".\n\n")
	if r != head && r.Machine != head.Machine {
		m := r.Machine
		fmt.Fprintf(b, "Machine: %s, %d cores, %s, kernel %s, %s.\n\n",
			m.CPU, m.Cores, fmtGiB(m.MemBytes), m.Kernel, m.GoVersion)
	}
	if r != head && (r.Gateway.Commit != head.Gateway.Commit ||
		strings.Join(r.Gateway.Flags, " ") != strings.Join(head.Gateway.Flags, " ")) {
		fmt.Fprintf(b, "Gateway: commit %s, flags %s.\n\n",
			r.Gateway.Commit, mdCode(strings.Join(r.Gateway.Flags, " ")))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
}

// mdTable writes a Markdown table; a "|" in a cell is escaped.
func mdTable(b *strings.Builder, header []string, rows [][]string) {
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for range header {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, row := range rows {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = mdEscape(c)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	b.WriteString("\n")
}

var idleHeader = []string{"step", "conns", "gateway RSS (MiB)", "bytes/conn (slope)", "conns per GiB", "kernel TCP mem (MiB)", "TCP sockets", "kernel B/socket"}

func idleRow(s *Step) []string {
	kmem := fmtFixed(float64(s.SockMemPages*4096)/(1<<20), 2)
	if s.SockMemPages == 0 && s.SocketsInUse > 0 {
		kmem = "0" // read, and empty: idle sockets hold no buffers
	}
	return []string{
		s.Label, fmtCount(int64(s.Conns)), fmtMiB(s.GatewayRSS), fmtFixed(s.BytesPerConn, 0),
		fmtFixed(connsPerGiB(s.BytesPerConn), 0), kmem, fmtCount(s.SocketsInUse),
		fmtFixed(s.KernelBytesPerSocket, 0),
	}
}

func writeIdle(b *strings.Builder, r *Result) {
	var rows [][]string
	for i := range r.Steps {
		rows = append(rows, idleRow(&r.Steps[i]))
	}
	mdTable(b, idleHeader, rows)
	b.WriteString("bytes/conn is the slope of gateway RSS from the previous step; conns per GiB = 1 GiB / bytes/conn; kernel TCP memory is /proc/net/sockstat's `mem` pages x 4096; " +
		"kernel B/socket is the growth of the kernel's slab memory (/proc/meminfo `Slab`) over the growth of TCP sockets in use from the previous step, both host-wide (anything else running on the host adds noise).\n\n")
	if lo, hi, ok := idleSpan(r); ok {
		slope := float64(hi.GatewayRSS-lo.GatewayRSS) / float64(hi.Conns-lo.Conns)
		fmt.Fprintf(b, "Slope from %s to %s conns: **%s bytes/conn**, %s conns per GiB of process memory.\n\n",
			fmtCount(int64(lo.Conns)), fmtCount(int64(hi.Conns)), fmtFixed(slope, 0), fmtFixed(connsPerGiB(slope), 0))
	}
	if v, src := idleBytesPerConn([]*Result{r}); v > 0 {
		fmt.Fprintf(b, "The capacity plan uses %s bytes/conn (%s).\n\n", fmtFixed(v, 0), src)
	}
	if v, src := idleKernelBytesPerSocket([]*Result{r}); v > 0 {
		fmt.Fprintf(b, "The capacity plan uses %s kernel bytes/socket (%s).\n\n", fmtFixed(v, 0), src)
	}
}

var connectHeader = []string{"step", "conns", "handshakes", "handshakes/s", "p50 (ms)", "p90 (ms)", "p99 (ms)", "p99.9 (ms)", "max (ms)", "errors"}

func connectRow(s *Step) []string {
	row := []string{s.Label, fmtCount(int64(s.Conns)), fmtCount(s.Handshakes), fmtFixed(s.HandshakesPerSec(), 0)}
	row = append(row, latencyCells(s.Latency)...)
	return append(row, fmtCount(s.Errors))
}

func writeConnect(b *strings.Builder, r *Result) {
	var rows [][]string
	for i := range r.Steps {
		rows = append(rows, connectRow(&r.Steps[i]))
	}
	mdTable(b, connectHeader, rows)
	b.WriteString("Latency is connect time: dial to the gateway's welcome.\n\n")
}

// trafficHeader is the table of fanout, ramp, dm and churn steps; churn adds
// its handshake rate.
func trafficHeader(r *Result) []string {
	h := []string{"step", shapeHeader(r), "target msg/s", "delivered/s", "p50 (ms)", "p90 (ms)", "p99 (ms)", "p99.9 (ms)", "max (ms)",
		"gaps", "dups", "lost", "gateway CPU (s)", "deliveries per gateway CPU-s", "harness CPU per delivery (µs)"}
	if r.Scenario == "churn" {
		h = append(h, "handshakes/s")
	}
	return h
}

func trafficRow(r *Result, s *Step) []string {
	row := []string{s.Label, resultShape(r), fmtFixed(s.TargetRate, 0), fmtFixed(s.DeliveredPerSec(), 0)}
	row = append(row, latencyCells(s.Latency)...)
	row = append(row, fmtCount(s.Gaps), fmtCount(s.Duplicates), fmtCount(s.Lost()),
		fmtFixed(s.GatewayCPU, 2), fmtFixed(s.DeliveriesPerCPUSec(), 0), fmtFixed(harnessCPUPerDelivery(s)*1e6, 2))
	if r.Scenario == "churn" {
		row = append(row, fmtFixed(s.HandshakesPerSec(), 0))
	}
	return row
}

func writeTraffic(b *strings.Builder, r *Result) {
	var rows [][]string
	for i := range r.Steps {
		rows = append(rows, trafficRow(r, &r.Steps[i]))
	}
	mdTable(b, trafficHeader(r), rows)
	b.WriteString("Latency is per delivery, from the send timestamp in the payload to its receipt. lost = expected deliveries that never arrived; gaps and dups by seq. Harness CPU per delivery is the load generator's CPU seconds divided by deliveries.\n\n")
}

// writeTimelines writes the per-second table of every step that kept one
// (loads with slow readers), folded.
func writeTimelines(b *strings.Builder, r *Result) {
	for i := range r.Steps {
		s := &r.Steps[i]
		if len(s.Timeline) == 0 {
			continue
		}
		fmt.Fprintf(b, "<details><summary>Per second of %s: deliveries, latency, kernel TCP memory, gateway RSS, slow readers still open</summary>\n\n", mdEscape(s.Label))
		var rows [][]string
		for _, t := range s.Timeline {
			rows = append(rows, []string{strconv.Itoa(t.T), fmtCount(t.Deliveries), fmtFixed(t.P50, 1), fmtFixed(t.P99, 1), fmtFixed(t.Max, 1),
				fmtMiB(t.TCPMemPages * int64(os.Getpagesize())), fmtMiB(t.GatewayRSS), strconv.FormatInt(t.SlowOpen, 10)})
		}
		mdTable(b, []string{"s", "deliveries", "p50 (ms)", "p99 (ms)", "max (ms)", "kernel TCP (MiB)", "gateway RSS (MiB)", "slow open"}, rows)
		b.WriteString("</details>\n\n")
	}
}

func writeBest(b *strings.Builder, r *Result) {
	s, bound := r.BestSustained()
	if s == nil {
		fmt.Fprintf(b, "**Best sustained rate:** none: no step kept p99 under %s ms with nothing lost, gapped or duplicated.\n\n", fmtFixed(bound, 0))
		return
	}
	fmt.Fprintf(b, "**Best sustained rate: %s deliveries/s** (step %s, target %s msg/s, p99 %s ms under the %s ms bound, nothing lost, gapped or duplicated; %s deliveries per gateway CPU-second).\n\n",
		fmtFixed(s.DeliveredPerSec(), 0), s.Label, fmtFixed(s.TargetRate, 0), fmtMs(s.Latency.P99), fmtFixed(bound, 0), fmtFixed(s.DeliveriesPerCPUSec(), 0))
}

// BestSustained returns the step of r with the highest delivered rate among
// those with a p99 latency under the bound and nothing lost, gapped or
// duplicated, or nil when there is none. The bound is Params["p99_bound_ms"]
// (milliseconds, or a duration such as "50ms"), DefaultP99BoundMs when
// absent.
func (r *Result) BestSustained() (best *Step, boundMs float64) {
	boundMs = r.p99BoundMs()
	for i := range r.Steps {
		s := &r.Steps[i]
		if s.Latency == nil || s.Latency.Count == 0 || s.Latency.P99 >= boundMs*1000 ||
			s.Lost() > 0 || s.Gaps > 0 || s.Duplicates > 0 || s.Delivered == 0 {
			continue
		}
		if best == nil || s.DeliveredPerSec() > best.DeliveredPerSec() {
			best = s
		}
	}
	return best, boundMs
}

func (r *Result) p99BoundMs() float64 {
	v := resultParam(r, "p99_bound_ms", "p99-bound-ms", "p99-bound", "p99_bound")
	if v == "" {
		return DefaultP99BoundMs
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
		return f
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return float64(d) / float64(time.Millisecond)
	}
	return DefaultP99BoundMs
}

// Table prints a compact human table of r, as after each run.
func Table(w io.Writer, r *Result) {
	fmt.Fprintf(w, "%s", r.Scenario)
	if sh := trafficShape(r); sh != "" {
		fmt.Fprintf(w, " %s", sh)
	}
	fmt.Fprintf(w, "  (%s, %d cores, gateway %s)\n", r.Machine.CPU, r.Machine.Cores, dashIfEmpty(r.Gateway.Commit))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	line := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	switch r.Scenario {
	case "idle":
		line("step", "conns", "RSS MiB", "B/conn", "conns/GiB", "kTCP MiB", "k B/socket")
		for i := range r.Steps {
			row := idleRow(&r.Steps[i])
			line(append(row[:6:6], row[7])...)
		}
	case "connect":
		line("step", "conns", "hs/s", "p50", "p90", "p99", "p99.9", "max ms", "errors")
		for i := range r.Steps {
			s := &r.Steps[i]
			line(append(append([]string{s.Label, fmtCount(int64(s.Conns)), fmtFixed(s.HandshakesPerSec(), 0)},
				latencyCells(s.Latency)...), fmtCount(s.Errors))...)
		}
	default:
		h := []string{"step", "target/s", "deliv/s", "p50", "p90", "p99", "p99.9", "max ms", "gaps", "dups", "lost", "gwCPU s", "deliv/CPU-s", "bench µs/deliv"}
		if r.Scenario == "churn" {
			h = append(h, "hs/s")
		}
		line(h...)
		for i := range r.Steps {
			row := trafficRow(r, &r.Steps[i])
			line(append([]string{row[0]}, row[2:]...)...)
		}
	}
	tw.Flush()
	if r.Scenario == "ramp" {
		if s, bound := r.BestSustained(); s != nil {
			fmt.Fprintf(w, "best sustained: %s deliveries/s at step %s (p99 %s ms < %s ms, nothing lost)\n",
				fmtFixed(s.DeliveredPerSec(), 0), s.Label, fmtMs(s.Latency.P99), fmtFixed(bound, 0))
		} else {
			fmt.Fprintf(w, "best sustained: none under p99 %s ms with nothing lost\n", fmtFixed(bound, 0))
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for i := range r.Steps {
		if b := r.Steps[i].Breakdown; b != nil {
			fmt.Fprintf(w, "breakdown of %s: %s\n", r.Steps[i].Label, b)
		}
	}
	for i := range r.Steps {
		if tl := r.Steps[i].Timeline; len(tl) > 0 {
			fmt.Fprintf(w, "timeline of %s (second: deliveries, p50 / p99 / max ms, kernel TCP MiB, gateway RSS MiB, slow readers open):\n", r.Steps[i].Label)
			for _, t := range tl {
				fmt.Fprintf(w, "  %3d: %8s  %7s / %7s / %7s  %7s  %7s  %4d\n", t.T, fmtCount(t.Deliveries), fmtFixed(t.P50, 1), fmtFixed(t.P99, 1), fmtFixed(t.Max, 1),
					fmtMiB(t.TCPMemPages*int64(os.Getpagesize())), fmtMiB(t.GatewayRSS), t.SlowOpen)
			}
		}
	}
}

// param returns the first of keys present in r.Params, or "".
func resultParam(r *Result, keys ...string) string {
	for _, k := range keys {
		if v, ok := r.Params[k]; ok && v != "" {
			return v
		}
	}
	return ""
}

// shapeOf describes the rooms of r from its parameters: "RxM" rooms x
// members, "N pairs" for dm, or "".
func resultShape(r *Result) string {
	rooms := resultParam(r, "rooms")
	members := resultParam(r, "members", "room-size", "room_size", "members-per-room")
	slow := ""
	if n := resultParam(r, "slow"); n != "" && n != "0" {
		slow = " (" + n + " slow)"
	}
	switch {
	case rooms != "" && members != "":
		return rooms + "x" + members + slow
	case members != "":
		return "1x" + members + slow
	}
	if p := resultParam(r, "pairs"); p != "" {
		return p + " pairs"
	}
	return ""
}

// trafficShape is resultShape for the scenarios that send messages, and ""
// for idle and connect, whose rooms are incidental.
func trafficShape(r *Result) string {
	if r.Scenario == "idle" || r.Scenario == "connect" {
		return ""
	}
	return resultShape(r)
}

func shapeHeader(r *Result) string {
	if r.Scenario == "dm" {
		return "pairs"
	}
	return "rooms x members"
}

func sectionTitle(r *Result) string {
	t := r.Scenario
	if l := resultParam(r, "label", "name"); l != "" {
		t += ": " + l
	} else if sh := trafficShape(r); sh != "" {
		t += ": " + sh
	}
	return t
}

// fixed formats v with dec decimals and thousands separators; 0 is "—"
// (a figure the step did not measure).
func fmtFixed(v float64, dec int) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return groupThousands(strconv.FormatFloat(math.Abs(v), 'f', dec, 64), v < 0)
}

// itoa formats a count with thousands separators; 0 is "0".
func fmtCount(n int64) string {
	if n == 0 {
		return "0"
	}
	return fmtFixed(float64(n), 0)
}

func fmtMiB(b int64) string { return fmtFixed(float64(b)/(1<<20), 1) }

func fmtGiB(b int64) string {
	if b == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f GiB", float64(b)/bytesPerGiB)
}

func mdCode(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
