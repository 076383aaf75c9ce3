package bench

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// PeerRun is one result of a comparison of the gateway with its peers
// (scripts/bench.sh --peers): the server it ran against and the load, both
// from its file name, peers-<server>-<load>.json (server names have no
// dash).
type PeerRun struct {
	Server, Load string
	Result       *Result
}

// PeerRunName splits a peers result file's name into server and load.
func PeerRunName(path string) (server, load string, ok bool) {
	name, isJSON := strings.CutSuffix(filepath.Base(path), ".json")
	rest, isPeers := strings.CutPrefix(name, "peers-")
	if !isJSON || !isPeers {
		return "", "", false
	}
	server, load, ok = strings.Cut(rest, "-")
	if !ok || server == "" || load == "" {
		return "", "", false
	}
	return server, load, true
}

// ReadPeerRuns reads peers result files, named as PeerRunName wants.
func ReadPeerRuns(paths ...string) ([]PeerRun, error) {
	var runs []PeerRun
	for _, p := range paths {
		server, load, ok := PeerRunName(p)
		if !ok {
			return nil, fmt.Errorf("bench: %s: not a peers result (peers-SERVER-LOAD.json)", p)
		}
		rs, err := ReadResults(p)
		if err != nil {
			return nil, err
		}
		runs = append(runs, PeerRun{Server: server, Load: load, Result: rs[0]})
	}
	return runs, nil
}

// PeersOrder is the servers' default column order; others follow by name.
var PeersOrder = []string{"gateway", "gatewaymem", "gorilla", "node", "centrifugo"}

// PeersMarkdown renders runs side by side: one table of memory per idle
// connection and one of the traffic loads, a row per load and, per server,
// the p99 delivery latency (with the loss, if any) and the deliveries per
// CPU-second of the server process. A ramp's row is its best step: the
// highest rate whose p99 stayed under the bound with nothing lost.
// versions (bin/peers/VERSIONS: name, version, source, tab-separated) gives
// the peers' versions and sources.
func PeersMarkdown(runs []PeerRun, versions string) string {
	var b strings.Builder
	b.WriteString("# The gateway and its peers\n\n")
	if len(runs) == 0 {
		b.WriteString("No results.\n")
		return b.String()
	}
	var pinned []PeerRun
	runs = slices.DeleteFunc(slices.Clone(runs), func(r PeerRun) bool {
		if strings.HasSuffix(r.Load, PinnedSuffix) {
			pinned = append(pinned, r)
			return true
		}
		return false
	})
	if len(runs) == 0 {
		runs = pinned
	}
	servers := peerServers(runs)
	byKey := map[[2]string]*Result{}
	proto := map[string]string{}
	var loads []string
	loadResult := map[string]*Result{}
	for _, r := range runs {
		byKey[[2]string{r.Server, r.Load}] = r.Result
		if _, seen := loadResult[r.Load]; !seen {
			loads = append(loads, r.Load)
			loadResult[r.Load] = r.Result
		}
		if p := r.Result.Params["proto"]; p != "" {
			proto[r.Server] = p
		} else if _, ok := proto[r.Server]; !ok {
			proto[r.Server] = ProtoGateway.Name
		}
	}
	sort.SliceStable(loads, func(i, j int) bool { return loadLess(loadResult[loads[i]], loadResult[loads[j]]) })

	writePeersHeader(&b, runs, servers, proto, versions)
	oneRoom := false
	cell := func(server, load string, f func(*Result) []string, width int) []string {
		r := byKey[[2]string{server, load}]
		if r != nil {
			return f(r)
		}
		out := make([]string, width)
		for i := range out {
			out[i] = "no result"
		}
		if p, _ := ProtoNamed(proto[server]); p != nil && p.OneRoom && resultParam(loadResult[load], "rooms") != "1" && loadResult[load].Scenario != "idle" {
			out[0], oneRoom = "n/a¹", true
			for i := 1; i < width; i++ {
				out[i] = "n/a"
			}
		}
		return out
	}

	var idle, traffic []string
	for _, l := range loads {
		if loadResult[l].Scenario == "idle" {
			idle = append(idle, l)
		} else {
			traffic = append(traffic, l)
		}
	}
	if len(idle) > 0 {
		b.WriteString("## Memory per idle connection\n\n")
		b.WriteString("The server's RSS grows by this much per connection (each joined to one room), the slope between the last two steps.\n\n")
		var rows [][]string
		for _, l := range idle {
			row := []string{peerLoadLabel(loadResult[l])}
			for _, s := range servers {
				row = append(row, cell(s, l, idleCell, 1)...)
			}
			rows = append(rows, row)
		}
		mdTable(&b, append([]string{"load"}, servers...), rows)
		b.WriteString("\n")
	}
	if len(traffic) > 0 {
		b.WriteString("## Fan-out\n\n")
		b.WriteString("p99 of send-to-receive latency in ms (with what was lost, if anything), and deliveries per CPU-second of the server process. " +
			"Every member receives every message of its room, the sender included. " +
			"A ramp's figures are of its best step: the highest rate whose p99 stayed under the bound with nothing lost.\n\n")
		header := []string{"load"}
		for _, s := range servers {
			header = append(header, s+" p99 ms", s+" deliv/CPU-s")
		}
		var rows [][]string
		for _, l := range traffic {
			row := []string{peerLoadLabel(loadResult[l])}
			for _, s := range servers {
				row = append(row, cell(s, l, trafficCells, 2)...)
			}
			rows = append(rows, row)
		}
		mdTable(&b, header, rows)
		b.WriteString("\n")
	}
	if oneRoom {
		b.WriteString("¹ A broadcast server has one room that every connection is in: loads of several rooms do not apply.\n")
	}
	writeBreakdowns(&b, byKey, servers, traffic, loadResult)
	writePinned(&b, pinned)
	return b.String()
}

// PinnedSuffix ends the load name of a run with the server and the harness
// pinned to separate cores (taskset): such runs get a table of their own.
const PinnedSuffix = "-pinned"

// writeBreakdowns adds, for each gateway run with a latency breakdown (byKey:
// a run by server and load), where its time went and how busy the harness was.
func writeBreakdowns(b *strings.Builder, byKey map[[2]string]*Result, servers, traffic []string, loadResult map[string]*Result) {
	ms := func(p50, p99 float64) string { return fmtFixed(p50/1000, 1) + " / " + fmtFixed(p99/1000, 1) }
	q := func(x *Quantiles) string {
		if x == nil {
			return "—"
		}
		return ms(x.P50, x.P99)
	}
	var rows [][]string
	for _, l := range traffic {
		for _, s := range servers {
			r := byKey[[2]string{s, l}]
			if r == nil {
				continue
			}
			st := peerStep(r)
			if st == nil || st.Breakdown == nil {
				continue
			}
			bd := st.Breakdown
			total := "—"
			if st.Latency != nil {
				total = ms(st.Latency.P50, st.Latency.P99)
			}
			rows = append(rows, []string{peerLoadLabel(loadResult[l]), s, q(bd.Publish), q(bd.QueueWait), q(bd.WriteOffset), total,
				fmtFixed(100*bd.BenchBusy, 0) + "%"})
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("\n## Where the gateway's time went\n\n")
	b.WriteString("p50 / p99 in ms of each part, from the gateway's own histograms over the step (buckets 1.5x apart): publish (stored, with the fsync of the default durable store), " +
		"queue wait (until a fan-out pass takes the message, budget holds included), write offset (from the pass's start to a member's write). " +
		"What the harness measured beyond them is the socket and the harness itself; \"harness busy\" is its CPU time over the step's wall time per poller: " +
		"near 100% the harness, not the server, binds. For a ramp, its best step.\n\n")
	mdTable(b, []string{"load", "server", "publish", "queue wait", "write offset", "delivered (harness)", "harness busy"}, rows)
}

// writePinned adds the runs made with the server on one core and the
// harness on the other: the harness's own floor, beside the unpinned runs.
func writePinned(b *strings.Builder, pinned []PeerRun) {
	if len(pinned) == 0 {
		return
	}
	b.WriteString("\n## Server and harness on separate cores\n\n")
	b.WriteString("The same loads with the server pinned to core 0 and the harness to core 1 (`taskset`): each has one core to itself, " +
		"so a harness busy near 100% is a load the harness, not the server, cannot keep up with.\n\n")
	var rows [][]string
	for _, r := range pinned {
		st := peerStep(r.Result)
		if st == nil {
			continue
		}
		busy := "—"
		if st.Breakdown != nil {
			busy = fmtFixed(100*st.Breakdown.BenchBusy, 0) + "%"
		} else if st.Duration > 0 {
			busy = fmtFixed(100*st.BenchCPU/st.Duration, 0) + "%"
		}
		cells := trafficCells(r.Result)
		rows = append(rows, []string{peerLoadLabel(r.Result), r.Server, cells[0], cells[1], busy})
	}
	mdTable(b, []string{"load", "server", "p99 ms", "deliv/CPU-s", "harness busy"}, rows)
}

// peerStep is a run's step of record: a fanout's only step, a ramp's best
// (or its first, when none met the bound).
func peerStep(r *Result) *Step {
	if len(r.Steps) == 0 {
		return nil
	}
	if r.Scenario == "ramp" {
		if best, _ := r.BestSustained(); best != nil {
			return best
		}
	}
	return &r.Steps[0]
}

// peerServers lists the servers of runs, PeersOrder first.
func peerServers(runs []PeerRun) []string {
	var out, rest []string
	seen := map[string]bool{}
	for _, r := range runs {
		seen[r.Server] = true
	}
	for _, s := range PeersOrder {
		if seen[s] {
			out = append(out, s)
			delete(seen, s)
		}
	}
	for s := range seen {
		rest = append(rest, s)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func writePeersHeader(b *strings.Builder, runs []PeerRun, servers []string, proto map[string]string, versions string) {
	m := runs[0].Result.Machine
	fmt.Fprintf(b, "Machine: %s, %d cores, %s, kernel %s. Go: %s (the harness and the Go servers).",
		dashIfEmpty(m.CPU), m.Cores, dashIfEmpty(fmtGiB(m.MemBytes)), dashIfEmpty(m.Kernel), dashIfEmpty(m.GoVersion))
	for _, r := range runs {
		if r.Server == "gateway" && r.Result.Gateway.Commit != "" {
			fmt.Fprintf(b, " Gateway commit: %s.", r.Result.Gateway.Commit)
			break
		}
	}
	var loads []float64
	for _, r := range runs {
		for _, s := range r.Result.Steps {
			if s.LoadAvg > 0 {
				loads = append(loads, s.LoadAvg)
			}
		}
	}
	if len(loads) > 0 {
		lo, hi := slices.Min(loads), slices.Max(loads)
		fmt.Fprintf(b, " The machine's 1-minute load average at the end of the steps: %s to %s (the server and the harness alone make about 2 on a busy step; more means something else ran too).",
			strconv.FormatFloat(lo, 'f', 2, 64), strconv.FormatFloat(hi, 'f', 2, 64))
	}
	b.WriteString("\n\n")
	// VERSIONS: name, version and source, tab-separated, a line each.
	vers := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(versions), "\n") {
		if f := strings.Split(line, "\t"); len(f) >= 2 {
			vers[f[0]] = f[1:]
		}
	}
	var rows [][]string
	for _, s := range servers {
		var cmd, ver, src string
		for _, r := range runs {
			if r.Server == s {
				cmd, ver = strings.Join(r.Result.Gateway.Flags, " "), r.Result.Gateway.Commit
				break
			}
		}
		if v := vers[s]; len(v) > 0 {
			ver = v[0]
			if len(v) > 1 {
				src = v[1]
			}
		} else if proto[s] == ProtoGateway.Name {
			src = "this repository"
		}
		rows = append(rows, []string{s, proto[s], dashIfEmpty(ver), dashIfEmpty(src), dashIfEmpty(mdCode(cmd))})
	}
	mdTable(b, []string{"server", "protocol", "version", "source", "run as"}, rows)
	b.WriteString("\n")
}

// idleCell is the memory per connection of an idle run.
func idleCell(r *Result) []string {
	if len(r.Steps) < 2 {
		return []string{"no steps"}
	}
	s := r.Steps[len(r.Steps)-1]
	return []string{fmt.Sprintf("%s KiB (RSS %s MiB at %s)", fmtFixed(s.BytesPerConn/1024, 1), fmtMiB(s.GatewayRSS), fmtCount(int64(s.Conns)))}
}

// trafficCells are the p99 and deliveries per CPU-second of a fanout run's
// step, or of a ramp's best.
func trafficCells(r *Result) []string {
	if len(r.Steps) == 0 {
		return []string{"no steps", "—"}
	}
	s := &r.Steps[0]
	prefix := ""
	if r.Scenario == "ramp" {
		best, bound := r.BestSustained()
		if best == nil {
			return []string{fmt.Sprintf("none under %s ms (%s/s: %s)", fmtFixed(bound, 0), fmtFixed(s.TargetRate, 0), stepP99(s)), "—"}
		}
		s, prefix = best, fmtFixed(best.TargetRate, 0)+"/s: "
	}
	return []string{prefix + stepP99(s), fmtFixed(s.DeliveriesPerCPUSec(), 0)}
}

// stepP99 is a step's p99 in ms and what it lost, gapped or doubled.
func stepP99(s *Step) string {
	out := "—"
	if s.Latency != nil && s.Latency.Count > 0 {
		out = fmtMs(s.Latency.P99)
	}
	var bad []string
	if n := s.Lost(); n > 0 {
		bad = append(bad, fmt.Sprintf("lost %s of %s (%s%%)", fmtCount(n), fmtCount(s.Expected), strconv.FormatFloat(100*float64(n)/float64(s.Expected), 'f', 2, 64)))
	}
	if s.Gaps > 0 {
		bad = append(bad, fmtCount(s.Gaps)+" gaps")
	}
	if s.Duplicates > 0 {
		bad = append(bad, fmtCount(s.Duplicates)+" dups")
	}
	if s.Errors > 0 {
		bad = append(bad, fmtCount(s.Errors)+" errors")
	}
	if len(bad) > 0 {
		out += ", " + strings.Join(bad, ", ")
	}
	return out
}

// peerLoadLabel describes a load: scenario, rooms x members, rates.
func peerLoadLabel(r *Result) string {
	switch r.Scenario {
	case "idle":
		var steps []string
		for _, s := range r.Steps {
			if s.Conns > 0 {
				steps = append(steps, fmtCount(int64(s.Conns)))
			}
		}
		return "idle, " + strings.Join(steps, " → ") + " connections"
	case "ramp":
		var rates []string
		for _, s := range r.Steps {
			rates = append(rates, fmtFixed(s.TargetRate, 0))
		}
		if v := resultParam(r, "rates"); v != "" {
			rates = strings.Split(v, ",")
		}
		return fmt.Sprintf("ramp %s at %s msg/s: the best under p99 %s ms", resultShape(r), strings.Join(rates, ", "), fmtFixed(r.p99BoundMs(), 0))
	}
	rate := resultParam(r, "rate")
	if rate == "" && len(r.Steps) > 0 {
		rate = fmtFixed(r.Steps[0].TargetRate, 0)
	}
	return fmt.Sprintf("%s %s at %s msg/s", r.Scenario, resultShape(r), rate)
}

// loadLess orders loads: idle, fanout, ramp, then by rooms, members and
// rate.
func loadLess(a, b *Result) bool {
	if ra, rb := scenarioRank(a.Scenario), scenarioRank(b.Scenario); ra != rb {
		return ra < rb
	}
	num := func(r *Result, k string) float64 {
		v, _ := strconv.ParseFloat(resultParam(r, k), 64)
		return v
	}
	for _, k := range []string{"rooms", "members", "rate"} {
		if x, y := num(a, k), num(b, k); x != y {
			return x < y
		}
	}
	return slices.Compare(strings.Split(resultParam(a, "rates"), ","), strings.Split(resultParam(b, "rates"), ",")) < 0
}
