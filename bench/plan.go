package bench

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// AssumedKernelBytesPerSocket is the kernel memory one idle TCP socket is
// assumed to cost outside the gateway process when no idle result measured
// it: tcp_sock (~2.4 KB) plus its inode, dentry, file and epoll item,
// ~3.8 KB in all. It is an assumption, read once with slabtop on the 2-core
// development machine by summing those slab objects per open socket, not a
// committed measurement; idle results that record kernel_bytes_per_socket
// replace it (see PlanFromResults). The kernel's share is the floor no
// user-space design removes, so Plan adds it to the process memory per
// connection.
const AssumedKernelBytesPerSocket = 3800

// defaultKernel gives in the assumed kernel figure when it has none, and
// calls a figure given without a source "given".
func (in *PlanInput) defaultKernel() {
	if in.KernelBytesPerSocket == 0 {
		in.KernelBytesPerSocket, in.KernelBytesPerSocketSource = AssumedKernelBytesPerSocket, assumedKernelSource
	} else if in.KernelBytesPerSocketSource == "" {
		in.KernelBytesPerSocketSource = "given"
	}
}

// assumedKernelSource describes AssumedKernelBytesPerSocket in a plan.
const assumedKernelSource = "assumed: read with slabtop on the 2-core development machine (tcp_sock, inode, dentry, file and epoll item per socket), not a committed measurement; an idle result that records kernel_bytes_per_socket measures it"

// MaxConnsPerProcess is about the most connections one gateway process held
// on the 2-core development machine (~19.5k; see the README's benchmark
// section). A plan that puts more on one node extrapolates: memory per
// connection linearly from the idle slope, and that many connections in
// one process were never measured.
const MaxConnsPerProcess = 19_500

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
	// KernelBytesPerSocket is the kernel memory per socket, bytes; 0 means
	// AssumedKernelBytesPerSocket.
	KernelBytesPerSocket float64

	// RedisPubSub plans the Redis Cluster masters too (plan_redis.go):
	// "classic" or "sharded" pub/sub; "" plans gateway nodes only.
	RedisPubSub string
	// RedisMsgsPerSecPerMaster is how many messages (append and publish)
	// one Redis master takes per second; needed with RedisPubSub.
	RedisMsgsPerSecPerMaster float64

	// Where BytesPerConn, DeliveriesPerCPUSec and KernelBytesPerSocket came
	// from, for the explanation; PlanFromResults fills them. Optional; the
	// kernel's source starts "measured:" or "assumed:" when PlanFromResults
	// or Plan fills it, and is "given" for a value given without one.
	BytesPerConnSource         string
	DeliveriesPerCPUSecSource  string
	KernelBytesPerSocketSource string

	// Profile is the measured fan-out of the room size closest to
	// AvgRoomSize; PlanFromResults fills it. Plan reads the p99 latency at
	// each node's load from it and notes loads above what it measured. nil:
	// latency unknown.
	Profile *FanoutProfile
}

// FanoutProfile is what was measured of one room size: the loss-free steps
// of the fanout and ramp results whose rooms have RoomSize members.
type FanoutProfile struct {
	RoomSize float64
	Steps    []ProfileStep // by DeliveredPerSec, ascending
}

// ProfileStep is one measured fan-out step.
type ProfileStep struct {
	Source              string // the result file (or the path it was written to)
	Label               string // the step's label
	Shape               string // rooms x members, e.g. "100x100"
	DeliveredPerSec     float64
	DeliveriesPerCPUSec float64
	P99Micros           float64 // p99 delivery latency, µs; 0 when not measured
}

func (s ProfileStep) String() string {
	return fmt.Sprintf("%s, %s step %q (%s delivered/s)", s.Source, s.Shape, s.Label, fmtNum(s.DeliveredPerSec))
}

// PlanOutput is Plan's answer, with every intermediate figure so that the
// arithmetic can be checked. Byte figures are bytes, rates are per second.
type PlanOutput struct {
	In PlanInput // the input, with defaults applied

	Connections float64 // Users x ConnectionsPerUser
	Memberships float64 // Users x RoomsPerUser
	Rooms       float64 // Memberships / AvgRoomSize

	ProcessMemBytes float64 // Connections x BytesPerConn
	KernelMemBytes  float64 // Connections x In.KernelBytesPerSocket
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

	// What one node takes: the connections its usable memory holds and the
	// deliveries per second its usable cores make.
	ConnsPerNodeCap, DeliveriesPerNodeCap float64
	// The load on each of Nodes nodes.
	ConnsPerNode, DeliveriesPerNode float64
	// Latency is the profile step that measured the load of one node: the
	// one with the fewest deliveries per second at or above
	// DeliveriesPerNode, or the highest when none reaches it. nil without a
	// profile.
	Latency *ProfileStep
	// Extrapolations lists where the plan goes beyond what was measured.
	Extrapolations []string

	// The Redis side, with In.RedisPubSub (plan_redis.go).
	UsableRedisMsgsPerMaster float64 // RedisMsgsPerSecPerMaster x (1 - Headroom)
	RedisMasters             int     // masters the messages need
	RedisMasterUtil          float64 // each master's load, as a share of what it takes
	NodesPerRoom             float64 // gateway nodes a room's members are on, on average
	RedisCopiesPerSec        float64 // MsgsPerSec x NodesPerRoom: the copies pub/sub sends

	// Problems lists inputs that are missing or out of range; the figures
	// that depend on them are zero.
	Problems []string
}

// Plan sizes a cluster for in. It assumes:
//
//   - memory grows linearly with connections: each costs BytesPerConn in the
//     gateway process plus KernelBytesPerSocket in the kernel (measured by
//     an idle result, or AssumedKernelBytesPerSocket when 0);
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
	in.defaultKernel()
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
	if in.KernelBytesPerSocket < 0 {
		problem("kernel bytes per socket must not be negative (got %g)", in.KernelBytesPerSocket)
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
		o.KernelMemBytes = o.Connections * in.KernelBytesPerSocket
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
	if in.BytesPerConn > 0 {
		o.ConnsPerNodeCap = o.UsableMemPerNode / (in.BytesPerConn + in.KernelBytesPerSocket)
	}
	o.DeliveriesPerNodeCap = o.UsableCoresPerNode * in.DeliveriesPerCPUSec
	o.ConnsPerNode = o.Connections / n
	o.DeliveriesPerNode = o.DeliveriesPerSec / n
	o.latency()
	o.redisPlan()
	return o
}

// latency picks the profile step that measured one node's load, and lists
// the plan's extrapolations.
func (o *PlanOutput) latency() {
	extra := func(format string, args ...any) {
		o.Extrapolations = append(o.Extrapolations, fmt.Sprintf(format, args...))
	}
	if o.ConnsPerNode > MaxConnsPerProcess {
		extra("%s conns per node is past the ~%s one gateway process held on the development machine: memory per connection is extrapolated linearly from the idle slope, and that many connections in one process were never measured",
			fmtNum(o.ConnsPerNode), fmtNum(MaxConnsPerProcess))
	}
	p := o.In.Profile
	if p == nil || len(p.Steps) == 0 {
		return
	}
	for i := range p.Steps {
		if p.Steps[i].DeliveredPerSec >= o.DeliveriesPerNode {
			o.Latency = &p.Steps[i]
			break
		}
	}
	if o.Latency == nil {
		o.Latency = &p.Steps[len(p.Steps)-1]
		extra("%s deliveries/s per node is above the highest measured for %s-member rooms (%s): CPU is extrapolated linearly, and the p99 at this load was not measured",
			fmtNum(o.DeliveriesPerNode), fmtNum(p.RoomSize), o.Latency)
	}
	if in := o.In; in.AvgRoomSize > 0 && p.RoomSize != in.AvgRoomSize {
		extra("rooms of %s members are planned with the closest measured room size, %s members", fmtNum(in.AvgRoomSize), fmtNum(p.RoomSize))
	}
}

// ceilNodes rounds a fractional node count up, ignoring the last bits of
// floating-point error (2.0000000000000004 nodes is 2).
func ceilNodes(x float64) int {
	return int(math.Ceil(x - 1e-9))
}

// PlanFromResults fills in's measured costs from results, where in leaves
// them zero (a value given in in wins over a measured one):
//
//   - BytesPerConn from the last idle result: its RSS slope from its second
//     loaded step to its largest (idleSpan), or without RSS readings the
//     slope of its step with the most connections, or when that is not
//     positive, the mean of the positive slopes of its steps after the first;
//   - KernelBytesPerSocket from the same idle result: the median of the
//     kernel bytes per socket its steps measured, over the steps with at
//     least 1,000 connections more than the previous one; when it measured
//     none, AssumedKernelBytesPerSocket, with a source that says "assumed"
//     (never an error);
//   - Profile, when AvgRoomSize is positive, from the fanout and ramp
//     results whose room size (members per room) is closest to AvgRoomSize
//     by ratio (ties: the smaller): their steps that lost nothing (no lost
//     deliveries, no gaps) and had no slow readers;
//   - DeliveriesPerCPUSec from the step of that profile with the most
//     deliveries per gateway CPU-second, or without a profile, from the
//     fanout or ramp step with the most among all that lost nothing.
//
// It returns an error naming each cost that is still zero: no value in in
// and no result that measures it. The returned input is filled as far as
// it could be either way. Profile steps are named by the path each result
// was written to (its "json" parameter); PlanFromFiles names them by the
// files read.
func PlanFromResults(in PlanInput, results []*Result) (PlanInput, error) {
	names := make([]string, len(results))
	for i, r := range results {
		if r != nil {
			names[i] = resultParam(r, "json")
		}
	}
	return planFromResults(in, results, names)
}

// PlanFromFiles is PlanFromResults over the result files at paths; a
// directory stands for all its *.json files.
func PlanFromFiles(in PlanInput, paths ...string) (PlanInput, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return in, err
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, "*.json"))
		if err != nil {
			return in, err
		}
		if len(m) == 0 {
			return in, fmt.Errorf("bench: no result JSON files in %s", p)
		}
		files = append(files, m...)
	}
	results, err := ReadResults(files...)
	if err != nil {
		return in, err
	}
	return planFromResults(in, results, files)
}

func planFromResults(in PlanInput, results []*Result, names []string) (PlanInput, error) {
	var errs []error
	if in.Profile == nil && in.AvgRoomSize > 0 {
		in.Profile = closestProfile(results, names, in.AvgRoomSize)
	}
	if in.BytesPerConn <= 0 {
		if v, src := idleBytesPerConn(results); v > 0 {
			in.BytesPerConn, in.BytesPerConnSource = v, src
		} else {
			errs = append(errs, errors.New("bench: no bytes per connection: no idle result with a positive slope, and none given"))
		}
	} else if in.BytesPerConnSource == "" {
		in.BytesPerConnSource = "given"
	}
	if in.KernelBytesPerSocket <= 0 {
		in.KernelBytesPerSocket, in.KernelBytesPerSocketSource = idleKernelBytesPerSocket(results) // 0, "" when none
	}
	in.defaultKernel()
	if in.DeliveriesPerCPUSec <= 0 {
		if v, src := profileDeliveriesPerCPUSec(in.Profile); v > 0 {
			in.DeliveriesPerCPUSec, in.DeliveriesPerCPUSecSource = v, src
		} else if v, src := bestDeliveriesPerCPUSec(results); v > 0 {
			in.DeliveriesPerCPUSec, in.DeliveriesPerCPUSecSource = v, src
		} else {
			errs = append(errs, errors.New("bench: no deliveries per CPU-second: no fanout or ramp step that lost nothing and measured gateway CPU, and none given"))
		}
	} else if in.DeliveriesPerCPUSecSource == "" {
		in.DeliveriesPerCPUSecSource = "given"
	}
	return in, errors.Join(errs...)
}

// lastIdle returns the last idle result with steps, or nil.
func lastIdle(results []*Result) *Result {
	var r *Result
	for _, x := range results {
		if x != nil && x.Scenario == "idle" && len(x.Steps) > 0 {
			r = x
		}
	}
	return r
}

// minKernelStepConns is the fewest connections a step must add to the
// previous one for its kernel bytes per socket to count: the slab moves by
// some kilobytes on its own, which over fewer sockets is mostly noise.
const minKernelStepConns = 1000

// idleKernelBytesPerSocket returns the kernel bytes per socket measured by
// the last idle result (see PlanFromResults), and a description of where
// it came from starting "measured:"; 0 and "" when it measured none.
func idleKernelBytesPerSocket(results []*Result) (float64, string) {
	r := lastIdle(results)
	if r == nil {
		return 0, ""
	}
	steps := stepsByConns(r)
	var vs []float64
	var labels []string
	for i := 1; i < len(steps); i++ {
		s := steps[i]
		if s.KernelBytesPerSocket > 0 && s.Conns-steps[i-1].Conns >= minKernelStepConns {
			vs = append(vs, s.KernelBytesPerSocket)
			labels = append(labels, strconv.Quote(s.Label))
		}
	}
	if len(vs) == 0 {
		return 0, ""
	}
	sort.Float64s(vs)
	med := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		med = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	return med, fmt.Sprintf("measured: idle result of %s, median of %d step(s) (%s): growth of the kernel's slab memory over growth of TCP sockets in use, both host-wide",
		r.Started.Format("2006-01-02 15:04"), len(vs), strings.Join(labels, ", "))
}

// idleSpan returns the steps an idle result's slope is taken over: from
// the second loaded step when there are three or more (the first carries
// the process's start-up growth, not per-connection cost) to the largest.
// ok is false without two loaded steps that recorded the gateway's RSS.
func idleSpan(r *Result) (lo, hi *Step, ok bool) {
	var steps []*Step
	for _, s := range stepsByConns(r) {
		if s.Conns > 0 && s.GatewayRSS > 0 {
			steps = append(steps, s)
		}
	}
	if len(steps) < 2 {
		return nil, nil, false
	}
	lo, hi = steps[0], steps[len(steps)-1]
	if len(steps) >= 3 {
		lo = steps[1]
	}
	return lo, hi, hi.Conns > lo.Conns
}

// idleBytesPerConn returns the bytes per connection of the last idle result
// (see PlanFromResults) and a description of where it came from: the RSS
// slope over its span (idleSpan), the figure its report leads with. One
// step's slope alone moved by several hundred bytes between steps of one
// run; without RSS readings, the largest step's slope, else the mean.
func idleBytesPerConn(results []*Result) (float64, string) {
	r := lastIdle(results)
	if r == nil {
		return 0, ""
	}
	if lo, hi, ok := idleSpan(r); ok && hi.GatewayRSS > lo.GatewayRSS {
		return float64(hi.GatewayRSS-lo.GatewayRSS) / float64(hi.Conns-lo.Conns),
			fmt.Sprintf("idle result of %s, RSS slope from step %q to %q (%s to %s conns)",
				r.Started.Format("2006-01-02 15:04"), lo.Label, hi.Label, fmtNum(float64(lo.Conns)), fmtNum(float64(hi.Conns)))
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

// roomSize is the members per room of a fanout or ramp result, 0 when its
// parameters do not say.
func roomSize(r *Result) float64 {
	v, err := strconv.ParseFloat(resultParam(r, "members", "room-size", "room_size", "members-per-room"), 64)
	if err != nil || v <= 0 {
		return 0
	}
	return v
}

// closestProfile gathers the loss-free steps without slow readers of the
// fanout and ramp results whose room size is closest to size by ratio
// (ties: the smaller); names[i] names results[i]. nil when none has such
// a step.
func closestProfile(results []*Result, names []string, size float64) *FanoutProfile {
	steps := map[float64][]ProfileStep{}
	for i, r := range results {
		if r == nil || (r.Scenario != "fanout" && r.Scenario != "ramp") {
			continue
		}
		rs := roomSize(r)
		if rs == 0 {
			continue
		}
		name := names[i]
		if name == "" {
			name = fmt.Sprintf("%s result of %s", r.Scenario, r.Started.Format("2006-01-02 15:04"))
		}
		for j := range r.Steps {
			s := &r.Steps[j]
			if s.Lost() > 0 || s.Gaps > 0 || s.Delivered == 0 || s.SlowReaders > 0 || s.Duration <= 0 {
				continue
			}
			ps := ProfileStep{Source: name, Label: s.Label, Shape: resultShape(r),
				DeliveredPerSec: s.DeliveredPerSec(), DeliveriesPerCPUSec: s.DeliveriesPerCPUSec()}
			if s.Latency != nil {
				ps.P99Micros = s.Latency.P99
			}
			steps[rs] = append(steps[rs], ps)
		}
	}
	best, bestDist := 0.0, math.Inf(1)
	for rs := range steps {
		d := math.Abs(math.Log(rs / size))
		if d < bestDist-1e-12 || (math.Abs(d-bestDist) <= 1e-12 && rs < best) {
			best, bestDist = rs, d
		}
	}
	if best == 0 {
		return nil
	}
	p := &FanoutProfile{RoomSize: best, Steps: steps[best]}
	sort.SliceStable(p.Steps, func(i, j int) bool { return p.Steps[i].DeliveredPerSec < p.Steps[j].DeliveredPerSec })
	return p
}

// profileDeliveriesPerCPUSec returns the highest deliveries per gateway
// CPU-second of p's steps.
func profileDeliveriesPerCPUSec(p *FanoutProfile) (float64, string) {
	if p == nil {
		return 0, ""
	}
	var best float64
	var src string
	for _, s := range p.Steps {
		if s.DeliveriesPerCPUSec > best {
			best = s.DeliveriesPerCPUSec
			src = fmt.Sprintf("the most efficient of the %d loss-free step(s) measured with %s-member rooms: %s", len(p.Steps), fmtNum(p.RoomSize), s)
		}
	}
	return best, src
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
	o.summary(&b, "")
	b.WriteString("\n")
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
	if o.RedisMasters > 0 {
		fmt.Fprintf(&b, "=> %d Redis master(s) with %s pub/sub, each at %s of what one takes\n", o.RedisMasters, in.RedisPubSub, fmtPct(o.RedisMasterUtil))
	}
	o.summary(&b, "=> ")
	for _, n := range o.notes() {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}

// summary writes what one node takes and the latency at its load, one line
// after prefix.
func (o PlanOutput) summary(b *strings.Builder, prefix string) {
	fmt.Fprintf(b, "%sone node takes %s conns (memory) and %s deliveries/s (CPU)",
		prefix, fmtNum(math.Floor(o.ConnsPerNodeCap)), fmtNum(math.Floor(o.DeliveriesPerNodeCap)))
	if o.Binding != "" {
		fmt.Fprintf(b, "; %s binds first", bindingName(o.Binding))
	}
	if l := o.Latency; l != nil {
		fmt.Fprintf(b, "; p99 %s, measured at %s", fmtMillis(l.P99Micros), l)
		if l.DeliveredPerSec < o.DeliveriesPerNode {
			fmt.Fprintf(b, ", below the %s deliveries/s per node planned", fmtNum(o.DeliveriesPerNode))
		}
	} else {
		b.WriteString("; p99 unknown (no fan-out result given)")
	}
	b.WriteString("\n")
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
		{"kernel memory", fmt.Sprintf("%s conns x %s B/socket (%s)", fmtNum(o.Connections), fmtNum(in.KernelBytesPerSocket), o.kernelKind()),
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
		{"load per node", fmt.Sprintf("%s conns, %s deliveries/s, memory and cores / %d node(s), as a share of the whole node", fmtNum(o.Connections), fmtNum(o.DeliveriesPerSec), o.Nodes),
			fmt.Sprintf("%s conns, %s deliveries/s, %s of memory, %s of cores", fmtNum(o.ConnsPerNode), fmtNum(o.DeliveriesPerNode), fmtPct(o.MemUtil), fmtPct(o.CPUUtil))},
		{"conns one node takes", fmt.Sprintf("%s / (%s B/conn + %s B/socket, %s)", fmtBytes(o.UsableMemPerNode), fmtNum(in.BytesPerConn), fmtNum(in.KernelBytesPerSocket), o.kernelKind()),
			fmtNum(math.Floor(o.ConnsPerNodeCap)) + " conns"},
		{"deliveries one node takes", fmt.Sprintf("%s core(s) x %s deliveries/CPU-s", fmtNum(o.UsableCoresPerNode), fmtNum(in.DeliveriesPerCPUSec)),
			fmtNum(math.Floor(o.DeliveriesPerNodeCap)) + " deliveries/s"},
	}
	if l := o.Latency; l != nil {
		ls = append(ls, planLine{"p99 at the load per node", "measured at " + l.String(), fmtMillis(l.P99Micros)})
	}
	return append(ls, o.redisLines()...)
}

// kernelKind is how the kernel bytes per socket were had: "measured" or
// "assumed" when its source starts so, else "given".
func (o PlanOutput) kernelKind() string {
	switch k, _, _ := strings.Cut(o.In.KernelBytesPerSocketSource, ":"); k {
	case "measured", "assumed":
		return k
	}
	return "given"
}

// fmtMillis formats a latency in µs as ms; 0 is "not measured".
func fmtMillis(us float64) string {
	if us <= 0 {
		return "not measured"
	}
	return fmtNum(us/1000) + " ms"
}

// notes are the sources of the measured costs and the plan's caveats.
func (o PlanOutput) notes() []string {
	in := o.In
	var ns []string
	for _, e := range o.Extrapolations {
		ns = append(ns, "extrapolated: "+e)
	}
	if in.BytesPerConnSource != "" {
		ns = append(ns, "bytes per connection: "+in.BytesPerConnSource)
	}
	if in.DeliveriesPerCPUSecSource != "" {
		ns = append(ns, "deliveries per CPU-second: "+in.DeliveriesPerCPUSecSource)
	}
	ns = append(ns,
		fmt.Sprintf("kernel memory per socket (%s B): %s", fmtNum(in.KernelBytesPerSocket), in.KernelBytesPerSocketSource),
		"bytes per connection were measured with each connection in one room; more rooms per user cost more memory than planned here",
		"deliveries per CPU-second come from the most efficient loss-free step measured (of the closest room size when fan-out results are given); batching makes lighter loads cost more CPU per delivery")
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
