package bench

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// KernelBytesPerSocket is the kernel memory one idle TCP socket costs
// outside the gateway process: tcp_sock (~2.4 KB) plus its inode, dentry,
// file and epoll item, ~3.8 KB in all. Measured on the 2-core development
// machine with slabtop, summing those slab objects per open socket. It is
// the floor no user-space design removes, so Plan adds it
// to the process memory per connection.
const KernelBytesPerSocket = 3800

// bytesPerGiB is one GiB in bytes.
const bytesPerGiB = 1 << 30

// PlanInput is the load to plan for, the node it runs on, and the two
// measured costs that turn load into resources.
type PlanInput struct {
	Users             int     // concurrent users
	RoomsPerUser      float64 // rooms each user is a member of (informational: see PlanOutput.Rooms)
	MsgsPerUserPerMin float64 // messages each user sends per minute
	AvgRoomSize       float64 // members per room; every member receives every message of the room
	NodeCores         int     // cores per node
	NodeMemGiB        float64 // memory per node, GiB
	// Headroom is the fraction of each node's cores and memory kept free:
	// 0.5 = use at most 50%. 0 plans nodes to be full; it must be below 1.
	Headroom float64

	BytesPerConn        float64 // gateway process memory per connection (idle slope), bytes
	DeliveriesPerCPUSec float64 // deliveries per gateway CPU-second
	ConnectionsPerUser  float64 // connections each user holds; 0 means 1

	// Where BytesPerConn and DeliveriesPerCPUSec came from, for the
	// explanation; PlanFromResults fills them. Optional.
	BytesPerConnSource        string
	DeliveriesPerCPUSecSource string
}

// PlanOutput is Plan's answer, with every intermediate figure so that the
// arithmetic can be checked. Byte figures are bytes, rates are per second.
type PlanOutput struct {
	In PlanInput // the input, with defaults applied

	Connections float64 // Users x ConnectionsPerUser
	Memberships float64 // Users x RoomsPerUser
	Rooms       float64 // Memberships / AvgRoomSize

	ProcessMemBytes float64 // Connections x BytesPerConn
	KernelMemBytes  float64 // Connections x KernelBytesPerSocket
	MemBytes        float64 // ProcessMemBytes + KernelMemBytes

	MsgsPerSec       float64 // Users x MsgsPerUserPerMin / 60
	DeliveriesPerSec float64 // MsgsPerSec x AvgRoomSize
	CoresNeeded      float64 // DeliveriesPerSec / DeliveriesPerCPUSec

	UsableMemPerNode   float64 // NodeMemGiB x 2^30 x (1 - Headroom), bytes
	UsableCoresPerNode float64 // NodeCores x (1 - Headroom)

	// MemNodes and CPUNodes are the exact (fractional) node counts each
	// resource needs; NodesByMem and NodesByCPU round them up.
	MemNodes, CPUNodes     float64
	NodesByMem, NodesByCPU int
	Nodes                  int    // max(NodesByMem, NodesByCPU), at least 1; 0 only when the input is invalid
	Binding                string // "memory" or "cpu": the larger exact need; "" when neither is known

	// Load on each of Nodes nodes, as fractions of the node's whole memory
	// and cores (so at most 1 - Headroom).
	MemUtil, CPUUtil float64

	// Problems lists inputs that are missing or out of range; the figures
	// that depend on them are zero.
	Problems []string
}

// Plan sizes a cluster for in. It assumes:
//
//   - memory grows linearly with connections: each costs BytesPerConn in the
//     gateway process plus KernelBytesPerSocket in the kernel;
//   - CPU grows linearly with deliveries: every message is delivered to every
//     member of its room, the sender included, so
//     deliveries/s = Users x MsgsPerUserPerMin / 60 x AvgRoomSize;
//   - connections and rooms spread evenly over nodes, and a node may use
//     (1 - Headroom) of its cores and memory.
//
// BytesPerConn is measured with each connection in one room (plus its
// inbox); memberships beyond that cost more than the plan counts.
func Plan(in PlanInput) PlanOutput {
	if in.ConnectionsPerUser == 0 {
		in.ConnectionsPerUser = 1
	}
	o := PlanOutput{In: in}
	problem := func(format string, args ...any) {
		o.Problems = append(o.Problems, fmt.Sprintf(format, args...))
	}
	if in.Users <= 0 {
		problem("users must be positive (got %d)", in.Users)
	}
	if in.ConnectionsPerUser < 0 {
		problem("connections per user must be positive (got %g)", in.ConnectionsPerUser)
	}
	if in.RoomsPerUser < 0 {
		problem("rooms per user must not be negative (got %g)", in.RoomsPerUser)
	}
	if in.MsgsPerUserPerMin < 0 {
		problem("messages per user per minute must not be negative (got %g)", in.MsgsPerUserPerMin)
	}
	if in.AvgRoomSize < 0 {
		problem("average room size must not be negative (got %g)", in.AvgRoomSize)
	}
	if in.Headroom < 0 || in.Headroom >= 1 {
		problem("headroom must be in [0, 1) (got %g)", in.Headroom)
	}
	if len(o.Problems) > 0 {
		return o
	}

	users := float64(in.Users)
	o.Connections = math.Ceil(users * in.ConnectionsPerUser)
	o.Memberships = users * in.RoomsPerUser
	if in.AvgRoomSize > 0 {
		o.Rooms = o.Memberships / in.AvgRoomSize
	}
	o.MsgsPerSec = users * in.MsgsPerUserPerMin / 60
	o.DeliveriesPerSec = o.MsgsPerSec * in.AvgRoomSize
	use := 1 - in.Headroom

	if in.BytesPerConn > 0 {
		o.ProcessMemBytes = o.Connections * in.BytesPerConn
		o.KernelMemBytes = o.Connections * KernelBytesPerSocket
		o.MemBytes = o.ProcessMemBytes + o.KernelMemBytes
	} else {
		problem("bytes per connection unknown: give it or a result of the idle scenario")
	}
	if in.NodeMemGiB > 0 {
		o.UsableMemPerNode = in.NodeMemGiB * bytesPerGiB * use
	} else {
		problem("node memory must be positive (got %g GiB)", in.NodeMemGiB)
	}
	if o.MemBytes > 0 && o.UsableMemPerNode > 0 {
		o.MemNodes = o.MemBytes / o.UsableMemPerNode
		o.NodesByMem = ceilNodes(o.MemNodes)
	}

	if in.DeliveriesPerCPUSec > 0 {
		o.CoresNeeded = o.DeliveriesPerSec / in.DeliveriesPerCPUSec
	} else {
		problem("deliveries per CPU-second unknown: give it or a result of the fanout or ramp scenario")
	}
	if in.NodeCores > 0 {
		o.UsableCoresPerNode = float64(in.NodeCores) * use
	} else {
		problem("node cores must be positive (got %d)", in.NodeCores)
	}
	if in.DeliveriesPerCPUSec > 0 && o.UsableCoresPerNode > 0 {
		o.CPUNodes = o.CoresNeeded / o.UsableCoresPerNode
		o.NodesByCPU = ceilNodes(o.CPUNodes)
	}

	o.Nodes = max(1, o.NodesByMem, o.NodesByCPU)
	switch {
	case o.NodesByMem == 0 && o.NodesByCPU == 0:
	case o.MemNodes >= o.CPUNodes:
		o.Binding = "memory"
	default:
		o.Binding = "cpu"
	}
	n := float64(o.Nodes)
	if in.NodeMemGiB > 0 {
		o.MemUtil = o.MemBytes / n / (in.NodeMemGiB * bytesPerGiB)
	}
	if in.NodeCores > 0 {
		o.CPUUtil = o.CoresNeeded / n / float64(in.NodeCores)
	}
	return o
}

// ceilNodes rounds a fractional node count up, ignoring the last bits of
// floating-point error (2.0000000000000004 nodes is 2).
func ceilNodes(x float64) int {
	return int(math.Ceil(x - 1e-9))
}

// PlanFromResults fills in's measured costs from results, where in leaves
// them zero (a value given in in wins over a measured one):
//
//   - BytesPerConn from the last idle result: the slope of its step with the
//     most connections, or when that is not positive, the mean of the
//     positive slopes of its steps after the first;
//   - DeliveriesPerCPUSec from the fanout or ramp step with the most
//     deliveries per gateway CPU-second among those that lost nothing (no
//     lost deliveries, no gaps).
//
// It returns an error naming each cost that is still zero: no value in in
// and no result that measures it. The returned input is filled as far as
// it could be either way.
func PlanFromResults(in PlanInput, results []*Result) (PlanInput, error) {
	var errs []error
	if in.BytesPerConn <= 0 {
		if v, src := idleBytesPerConn(results); v > 0 {
			in.BytesPerConn, in.BytesPerConnSource = v, src
		} else {
			errs = append(errs, errors.New("bench: no bytes per connection: no idle result with a positive slope, and none given"))
		}
	} else if in.BytesPerConnSource == "" {
		in.BytesPerConnSource = "given"
	}
	if in.DeliveriesPerCPUSec <= 0 {
		if v, src := bestDeliveriesPerCPUSec(results); v > 0 {
			in.DeliveriesPerCPUSec, in.DeliveriesPerCPUSecSource = v, src
		} else {
			errs = append(errs, errors.New("bench: no deliveries per CPU-second: no fanout or ramp step that lost nothing and measured gateway CPU, and none given"))
		}
	} else if in.DeliveriesPerCPUSecSource == "" {
		in.DeliveriesPerCPUSecSource = "given"
	}
	return in, errors.Join(errs...)
}

// idleBytesPerConn returns the bytes per connection of the last idle result
// (see PlanFromResults) and a description of where it came from.
func idleBytesPerConn(results []*Result) (float64, string) {
	var r *Result
	for _, x := range results {
		if x != nil && x.Scenario == "idle" && len(x.Steps) > 0 {
			r = x
		}
	}
	if r == nil {
		return 0, ""
	}
	steps := stepsByConns(r)
	last := steps[len(steps)-1]
	if last.BytesPerConn > 0 {
		return last.BytesPerConn, fmt.Sprintf("idle result of %s, slope of step %q (%s conns)",
			r.Started.Format("2006-01-02 15:04"), last.Label, fmtNum(float64(last.Conns)))
	}
	var sum float64
	var n int
	for _, s := range steps[1:] {
		if s.BytesPerConn > 0 {
			sum += s.BytesPerConn
			n++
		}
	}
	if n == 0 {
		return 0, ""
	}
	return sum / float64(n), fmt.Sprintf("idle result of %s, mean slope of %d steps",
		r.Started.Format("2006-01-02 15:04"), n)
}

// stepsByConns returns r's steps ordered by connections (stable).
func stepsByConns(r *Result) []*Step {
	steps := make([]*Step, len(r.Steps))
	for i := range r.Steps {
		steps[i] = &r.Steps[i]
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].Conns < steps[j].Conns })
	return steps
}

// bestDeliveriesPerCPUSec returns the highest deliveries per gateway
// CPU-second of any fanout or ramp step that lost nothing.
func bestDeliveriesPerCPUSec(results []*Result) (float64, string) {
	var best float64
	var src string
	for _, r := range results {
		if r == nil || (r.Scenario != "fanout" && r.Scenario != "ramp") {
			continue
		}
		for i := range r.Steps {
			s := &r.Steps[i]
			if s.Lost() > 0 || s.Gaps > 0 || s.Delivered == 0 {
				continue
			}
			if v := s.DeliveriesPerCPUSec(); v > best {
				best = v
				src = fmt.Sprintf("%s result %s of %s, step %q (%s delivered/s)",
					r.Scenario, resultShape(r), r.Started.Format("2006-01-02 15:04"), s.Label, fmtNum(s.DeliveredPerSec()))
			}
		}
	}
	return best, src
}

// Markdown renders the plan as a Markdown section: the inputs, then one
// table row per step of the arithmetic.
func (o PlanOutput) Markdown() string {
	var b strings.Builder
	in := o.In
	b.WriteString("## Capacity plan\n\n")
	if len(o.Problems) > 0 {
		b.WriteString("The plan is incomplete:\n\n")
		for _, p := range o.Problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
		b.WriteString("\n")
	}
	if o.Nodes == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "**%d node(s)** of %d cores and %s GiB, using at most %s of each",
		o.Nodes, in.NodeCores, fmtNum(in.NodeMemGiB), fmtPct(1-in.Headroom))
	if o.Binding != "" {
		fmt.Fprintf(&b, "; %s binds first", bindingName(o.Binding))
	}
	b.WriteString(".\n\n")
	b.WriteString("| quantity | arithmetic | value |\n| --- | --- | --- |\n")
	for _, l := range o.lines() {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", l.name, mdEscape(l.formula), l.value)
	}
	b.WriteString("\n")
	for _, n := range o.notes() {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	return b.String()
}

// String renders the plan as plain text, one line of arithmetic per figure.
func (o PlanOutput) String() string {
	var b strings.Builder
	in := o.In
	for _, p := range o.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	if o.Nodes == 0 {
		return b.String()
	}
	w := 0
	lines := o.lines()
	for _, l := range lines {
		w = max(w, len(l.name))
	}
	for _, l := range lines {
		fmt.Fprintf(&b, "%-*s  %s = %s\n", w, l.name, l.formula, l.value)
	}
	fmt.Fprintf(&b, "=> %d node(s) of %d cores and %s GiB, each used to at most %s (headroom %s kept free)",
		o.Nodes, in.NodeCores, fmtNum(in.NodeMemGiB), fmtPct(1-in.Headroom), fmtPct(in.Headroom))
	if o.Binding != "" {
		fmt.Fprintf(&b, "; %s binds first", bindingName(o.Binding))
	}
	b.WriteString("\n")
	for _, n := range o.notes() {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}

type planLine struct{ name, formula, value string }

// lines is the arithmetic of the plan, in order, with units.
func (o PlanOutput) lines() []planLine {
	in := o.In
	use := 1 - in.Headroom
	ls := []planLine{
		{"connections", fmt.Sprintf("%s users x %s conn/user", fmtNum(float64(in.Users)), fmtNum(in.ConnectionsPerUser)),
			fmtNum(o.Connections) + " conns"},
		{"memberships", fmt.Sprintf("%s users x %s rooms/user", fmtNum(float64(in.Users)), fmtNum(in.RoomsPerUser)),
			fmtNum(o.Memberships)},
		{"rooms", fmt.Sprintf("%s memberships / %s members/room", fmtNum(o.Memberships), fmtNum(in.AvgRoomSize)),
			fmtNum(o.Rooms) + " rooms"},
		{"process memory", fmt.Sprintf("%s conns x %s B/conn", fmtNum(o.Connections), fmtNum(in.BytesPerConn)),
			fmtBytes(o.ProcessMemBytes)},
		{"kernel memory", fmt.Sprintf("%s conns x %d B/socket", fmtNum(o.Connections), KernelBytesPerSocket),
			fmtBytes(o.KernelMemBytes)},
		{"memory needed", fmt.Sprintf("%s + %s", fmtBytes(o.ProcessMemBytes), fmtBytes(o.KernelMemBytes)),
			fmtBytes(o.MemBytes)},
		{"messages", fmt.Sprintf("%s users x %s msg/user/min / 60 s/min", fmtNum(float64(in.Users)), fmtNum(in.MsgsPerUserPerMin)),
			fmtNum(o.MsgsPerSec) + " msg/s"},
		{"deliveries", fmt.Sprintf("%s msg/s x %s members/room (sender included)", fmtNum(o.MsgsPerSec), fmtNum(in.AvgRoomSize)),
			fmtNum(o.DeliveriesPerSec) + " deliveries/s"},
		{"CPU needed", fmt.Sprintf("%s deliveries/s / %s deliveries/CPU-s", fmtNum(o.DeliveriesPerSec), fmtNum(in.DeliveriesPerCPUSec)),
			fmtNum(o.CoresNeeded) + " cores"},
		{"usable memory/node", fmt.Sprintf("%s GiB x %s", fmtNum(in.NodeMemGiB), fmtPct(use)),
			fmtBytes(o.UsableMemPerNode)},
		{"usable cores/node", fmt.Sprintf("%d cores x %s", in.NodeCores, fmtPct(use)),
			fmtNum(o.UsableCoresPerNode) + " core(s)"},
		{"nodes by memory", fmt.Sprintf("ceil(%s / %s) = ceil(%s)", fmtBytes(o.MemBytes), fmtBytes(o.UsableMemPerNode), fmtNum(o.MemNodes)),
			fmt.Sprint(o.NodesByMem)},
		{"nodes by CPU", fmt.Sprintf("ceil(%s cores / %s cores) = ceil(%s)", fmtNum(o.CoresNeeded), fmtNum(o.UsableCoresPerNode), fmtNum(o.CPUNodes)),
			fmt.Sprint(o.NodesByCPU)},
		{"nodes", fmt.Sprintf("max(%d, %d, 1)", o.NodesByMem, o.NodesByCPU), fmt.Sprint(o.Nodes)},
		{"load per node", fmt.Sprintf("%s conns, memory and cores / %d node(s), as a share of the whole node", fmtNum(o.Connections), o.Nodes),
			fmt.Sprintf("%s conns, %s of memory, %s of cores", fmtNum(o.Connections/float64(o.Nodes)), fmtPct(o.MemUtil), fmtPct(o.CPUUtil))},
	}
	return ls
}

// notes are the sources of the measured costs and the plan's caveats.
func (o PlanOutput) notes() []string {
	in := o.In
	var ns []string
	if in.BytesPerConnSource != "" {
		ns = append(ns, "bytes per connection: "+in.BytesPerConnSource)
	}
	if in.DeliveriesPerCPUSecSource != "" {
		ns = append(ns, "deliveries per CPU-second: "+in.DeliveriesPerCPUSecSource)
	}
	ns = append(ns,
		fmt.Sprintf("kernel memory per socket (%d B) was measured on the 2-core development machine (slabtop: tcp_sock, inode, dentry, file and epoll item per socket)", KernelBytesPerSocket),
		"bytes per connection were measured with each connection in one room; more rooms per user cost more memory than planned here",
		"deliveries per CPU-second come from the most efficient loss-free step measured; batching makes lighter loads cost more CPU per delivery")
	return ns
}

func bindingName(b string) string {
	if b == "cpu" {
		return "CPU"
	}
	return b
}

// fmtNum formats a figure with thousands separators and at most 2 decimals.
func fmtNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprint(v)
	}
	s := strconv.FormatFloat(math.Abs(v), 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return groupThousands(s, v < 0)
}

// groupThousands puts commas into the integer part of the unsigned decimal
// s, and a minus sign in front when neg.
func groupThousands(s string, neg bool) string {
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// pct formats a fraction as a percentage.
func fmtPct(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", f*100), "0"), ".") + "%"
}

// bytesStr formats a byte count in bytes and in GiB or MiB.
func fmtBytes(b float64) string {
	switch {
	case b >= bytesPerGiB:
		return fmt.Sprintf("%s B (%.2f GiB)", fmtNum(b), b/bytesPerGiB)
	case b >= 1<<20:
		return fmt.Sprintf("%s B (%.2f MiB)", fmtNum(b), b/(1<<20))
	default:
		return fmtNum(b) + " B"
	}
}

// mdEscape keeps a table cell from breaking the table.
func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
