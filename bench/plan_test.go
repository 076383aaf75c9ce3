package bench

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func approxEq(t *testing.T, name string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

// baseInput is the worked example: a million users on 2-core, 24 GiB nodes
// kept half empty.
func examplePlanInput() PlanInput {
	return PlanInput{
		Users:               1_000_000,
		ConnectionsPerUser:  1,
		RoomsPerUser:        10,
		MsgsPerUserPerMin:   2,
		AvgRoomSize:         50,
		NodeCores:           2,
		NodeMemGiB:          24,
		Headroom:            0.5,
		BytesPerConn:        2048,
		DeliveriesPerCPUSec: 1_000_000,
	}
}

func TestPlanArithmetic(t *testing.T) {
	o := Plan(examplePlanInput())
	if len(o.Problems) > 0 {
		t.Fatalf("problems: %v", o.Problems)
	}
	// 1,000,000 users x 1 connection.
	approxEq(t, "connections", o.Connections, 1_000_000)
	// 1,000,000 x 10 rooms/user = 10,000,000 memberships, / 50 = 200,000 rooms.
	approxEq(t, "memberships", o.Memberships, 10_000_000)
	approxEq(t, "rooms", o.Rooms, 200_000)
	// 1,000,000 x 2048 B = 2,048,000,000 B in the process.
	approxEq(t, "process memory", o.ProcessMemBytes, 2_048_000_000)
	// 1,000,000 x 3,800 B = 3,800,000,000 B in the kernel.
	approxEq(t, "kernel memory", o.KernelMemBytes, 3_800_000_000)
	approxEq(t, "memory", o.MemBytes, 5_848_000_000)
	// 1,000,000 users x 2 msg/min / 60 = 33,333.33 msg/s; x 50 members =
	// 1,666,666.67 deliveries/s.
	approxEq(t, "messages/s", o.MsgsPerSec, 100_000.0/3)
	approxEq(t, "deliveries/s", o.DeliveriesPerSec, 5_000_000.0/3)
	// 1,666,666.67 / 1,000,000 per CPU-second = 1.667 cores.
	approxEq(t, "cores", o.CoresNeeded, 5.0/3)
	// 24 GiB x 50% = 12 GiB = 12,884,901,888 B; 2 cores x 50% = 1 core.
	approxEq(t, "usable memory/node", o.UsableMemPerNode, 12_884_901_888)
	approxEq(t, "usable cores/node", o.UsableCoresPerNode, 1)
	// Memory: 5,848,000,000 / 12,884,901,888 = 0.454 nodes -> 1.
	approxEq(t, "memory nodes", o.MemNodes, 5_848_000_000.0/12_884_901_888)
	if o.NodesByMem != 1 {
		t.Errorf("nodes by memory = %d, want 1", o.NodesByMem)
	}
	// CPU: 1.667 / 1 = 1.667 nodes -> 2.
	approxEq(t, "CPU nodes", o.CPUNodes, 5.0/3)
	if o.NodesByCPU != 2 {
		t.Errorf("nodes by CPU = %d, want 2", o.NodesByCPU)
	}
	if o.Nodes != 2 || o.Binding != "cpu" {
		t.Errorf("nodes = %d binding %q, want 2 and cpu", o.Nodes, o.Binding)
	}
	// On 2 nodes: 2.92 GB of 24 GiB each, 0.83 of 2 cores each.
	approxEq(t, "memory use", o.MemUtil, 5_848_000_000.0/2/(24*(1<<30)))
	approxEq(t, "CPU use", o.CPUUtil, 5.0/3/2/2)
}

func TestPlanMemoryBinds(t *testing.T) {
	// Quiet users: 10 M connections, 0.1 msg/min in rooms of 5.
	in := examplePlanInput()
	in.Users = 10_000_000
	in.MsgsPerUserPerMin = 0.1
	in.AvgRoomSize = 5
	o := Plan(in)
	// Memory: 10 M x (2048 + 3800) B = 58,480,000,000 B / 12 GiB = 4.54 -> 5.
	approxEq(t, "memory", o.MemBytes, 58_480_000_000)
	if o.NodesByMem != 5 {
		t.Errorf("nodes by memory = %d, want 5", o.NodesByMem)
	}
	// CPU: 10 M x 0.1 / 60 x 5 = 83,333 deliveries/s = 0.083 cores -> 1.
	approxEq(t, "deliveries/s", o.DeliveriesPerSec, 10_000_000*0.1/60*5)
	if o.NodesByCPU != 1 {
		t.Errorf("nodes by CPU = %d, want 1", o.NodesByCPU)
	}
	if o.Nodes != 5 || o.Binding != "memory" {
		t.Errorf("nodes = %d binding %q, want 5 and memory", o.Nodes, o.Binding)
	}
}

func TestPlanDefaultsAndEdges(t *testing.T) {
	in := examplePlanInput()
	in.ConnectionsPerUser = 0 // defaults to 1
	in.Users = 10
	o := Plan(in)
	approxEq(t, "connections", o.Connections, 10)
	if o.Nodes != 1 {
		t.Errorf("a tiny load needs %d nodes, want at least 1", o.Nodes)
	}

	// 2.5 connections per user (phone, laptop, a tab and a half): ceil.
	in = examplePlanInput()
	in.ConnectionsPerUser = 2.5
	in.Users = 3
	approxEq(t, "connections", Plan(in).Connections, 8)

	// Exactly full: 2 cores of need on 1-core-usable nodes is 2 nodes, not 3.
	in = examplePlanInput()
	in.DeliveriesPerCPUSec = 5_000_000.0 / 3 / 2
	o = Plan(in)
	if o.NodesByCPU != 2 {
		t.Errorf("nodes by CPU = %d at exactly 2 nodes of need, want 2", o.NodesByCPU)
	}

	// Headroom is the share kept free: 0.25 leaves 75% of each node usable.
	in = examplePlanInput()
	in.Headroom = 0.25
	o = Plan(in)
	approxEq(t, "usable cores at 25% headroom", o.UsableCoresPerNode, 1.5)
	approxEq(t, "usable memory at 25% headroom", o.UsableMemPerNode, 18*(1<<30))

	// Zero headroom uses whole nodes.
	in = examplePlanInput()
	in.Headroom = 0
	approxEq(t, "usable cores", Plan(in).UsableCoresPerNode, 2)

	for _, bad := range []func(*PlanInput){
		func(in *PlanInput) { in.Users = 0 },
		func(in *PlanInput) { in.Headroom = 1 },
		func(in *PlanInput) { in.Headroom = -0.1 },
	} {
		in := examplePlanInput()
		bad(&in)
		o := Plan(in)
		if len(o.Problems) == 0 || o.Nodes != 0 {
			t.Errorf("invalid input %+v planned %d nodes, problems %v", in, o.Nodes, o.Problems)
		}
		if !strings.Contains(o.String(), "problem:") {
			t.Errorf("String of an invalid plan does not name the problem:\n%s", o)
		}
	}

	// A missing cost is a problem, and the other resource is still planned.
	in = examplePlanInput()
	in.DeliveriesPerCPUSec = 0
	o = Plan(in)
	if len(o.Problems) != 1 || o.NodesByMem != 1 || o.NodesByCPU != 0 || o.Nodes != 1 || o.Binding != "memory" {
		t.Errorf("plan without CPU cost: %+v", o)
	}
}

func TestPlanText(t *testing.T) {
	in := examplePlanInput()
	in.BytesPerConnSource = "idle result X"
	o := Plan(in)
	s := o.String()
	for _, want := range []string{
		"1,000,000 users x 1 conn/user = 1,000,000 conns",
		"1,000,000 conns x 2,048 B/conn = 2,048,000,000 B (1.91 GiB)",
		// No kernel figure given: the assumed one, and the plan says so.
		"1,000,000 conns x 3,800 B/socket (assumed) = 3,800,000,000 B (3.54 GiB)",
		"12,884,901,888 B (12.00 GiB) / (2,048 B/conn + 3,800 B/socket, assumed) = 2,203,300 conns",
		"= 5,848,000,000 B (5.45 GiB)",
		"1,000,000 users x 2 msg/user/min / 60 s/min = 33,333.33 msg/s",
		"33,333.33 msg/s x 50 members/room (sender included) = 1,666,666.67 deliveries/s",
		"1,666,666.67 deliveries/s / 1,000,000 deliveries/CPU-s = 1.67 cores",
		"24 GiB x 50% = 12,884,901,888 B (12.00 GiB)",
		"2 cores x 50% = 1 core(s)",
		"ceil(1.67 cores / 1 cores) = ceil(1.67) = 2",
		"max(1, 2, 1) = 2",
		"=> 2 node(s) of 2 cores and 24 GiB, each used to at most 50% (headroom 50% kept free); CPU binds first",
		"bytes per connection: idle result X",
		"note: kernel memory per socket (3,800 B): assumed: read with slabtop",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	md := o.Markdown()
	for _, want := range []string{
		"## Capacity plan",
		"**2 node(s)** of 2 cores and 24 GiB, using at most 50% of each; CPU binds first.",
		"| deliveries | 33,333.33 msg/s x 50 members/room (sender included) | 1,666,666.67 deliveries/s |",
		"| nodes | max(1, 2, 1) | 2 |",
		"| kernel memory | 1,000,000 conns x 3,800 B/socket (assumed) | 3,800,000,000 B (3.54 GiB) |",
		"- kernel memory per socket (3,800 B): assumed:",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown() lacks %q:\n%s", want, md)
		}
	}
}

func TestPlanFromResults(t *testing.T) {
	idleOld := &Result{Scenario: "idle", Steps: []Step{
		{Label: "1k", Conns: 1000, GatewayRSS: 10 << 20},
		{Label: "5k", Conns: 5000, BytesPerConn: 9999},
	}}
	idle := &Result{Scenario: "idle", Steps: []Step{
		{Label: "1k", Conns: 1000, GatewayRSS: 10 << 20},
		{Label: "18k", Conns: 18000, BytesPerConn: 1900}, // out of order: the largest is picked by conns
		{Label: "5k", Conns: 5000, BytesPerConn: 2100},
		{Label: "10k", Conns: 10000, BytesPerConn: 2000},
	}}
	fanout := &Result{Scenario: "fanout", Params: map[string]string{"rooms": "1", "members": "2000"}, Steps: []Step{
		{Label: "200/s", Duration: 10, Expected: 4_000_000, Delivered: 4_000_000, GatewayCPU: 3.2}, // 1.25 M/CPU-s
	}}
	ramp := &Result{Scenario: "ramp", Params: map[string]string{"rooms": "1", "members": "10000"}, Steps: []Step{
		{Label: "r1", Duration: 10, Expected: 1_000_000, Delivered: 1_000_000, GatewayCPU: 1},            // 1 M
		{Label: "r2", Duration: 10, Expected: 9_000_000, Delivered: 9_000_000, GatewayCPU: 6},            // 1.5 M: best
		{Label: "r3", Duration: 10, Expected: 20_000_000, Delivered: 19_000_000, GatewayCPU: 9.5},        // 2 M but lost
		{Label: "r4", Duration: 10, Expected: 18_000_000, Delivered: 18_000_000, GatewayCPU: 9, Gaps: 3}, // 2 M but gapped
	}}
	// A dm result is more efficient still, but is not a fan-out measure.
	dm := &Result{Scenario: "dm", Steps: []Step{{Label: "d", Expected: 10, Delivered: 10, GatewayCPU: 1e-6}}}

	in, err := PlanFromResults(PlanInput{}, []*Result{idleOld, fanout, idle, ramp, dm})
	if err != nil {
		t.Fatal(err)
	}
	approxEq(t, "bytes/conn", in.BytesPerConn, 1900)
	approxEq(t, "deliveries/CPU-s", in.DeliveriesPerCPUSec, 1_500_000)
	if !strings.Contains(in.BytesPerConnSource, `"18k"`) || !strings.Contains(in.DeliveriesPerCPUSecSource, `"r2"`) {
		t.Errorf("sources: %q, %q", in.BytesPerConnSource, in.DeliveriesPerCPUSecSource)
	}

	// With the gateway's RSS at each step: the slope from the second
	// loaded step to the largest (here 5k to 18k: 20 MiB over 13,000), not
	// the largest step's own slope.
	idleRSS := &Result{Scenario: "idle", Steps: []Step{
		{Label: "0", GatewayRSS: 8 << 20},
		{Label: "1k", Conns: 1000, GatewayRSS: 12 << 20, BytesPerConn: 4194},
		{Label: "5k", Conns: 5000, GatewayRSS: 20 << 20, BytesPerConn: 2097},
		{Label: "18k", Conns: 18000, GatewayRSS: 40 << 20, BytesPerConn: 1835},
		{Label: "10k", Conns: 10000, GatewayRSS: 26 << 20, BytesPerConn: 1258},
	}}
	in, err = PlanFromResults(PlanInput{}, []*Result{idleRSS, fanout})
	if err != nil {
		t.Fatal(err)
	}
	approxEq(t, "bytes/conn over the span", in.BytesPerConn, float64(20<<20)/13000)
	if !strings.Contains(in.BytesPerConnSource, `from step "5k" to "18k"`) {
		t.Errorf("source: %q", in.BytesPerConnSource)
	}

	// Without a slope on the largest step: the mean of the slopes after the
	// first step.
	idle.Steps[1].BytesPerConn = 0
	in, err = PlanFromResults(PlanInput{}, []*Result{idle, fanout})
	if err != nil {
		t.Fatal(err)
	}
	approxEq(t, "mean bytes/conn", in.BytesPerConn, 2050)
	approxEq(t, "fanout deliveries/CPU-s", in.DeliveriesPerCPUSec, 1_250_000)

	// Given values win over measured ones.
	in, err = PlanFromResults(PlanInput{BytesPerConn: 3000, DeliveriesPerCPUSec: 7}, []*Result{idle, ramp})
	if err != nil || in.BytesPerConn != 3000 || in.DeliveriesPerCPUSec != 7 || in.BytesPerConnSource != "given" {
		t.Errorf("given values: %+v, %v", in, err)
	}

	// Neither measured nor given: an error per missing cost, and what could
	// be filled is filled.
	in, err = PlanFromResults(PlanInput{}, []*Result{idle, dm})
	if err == nil || !strings.Contains(err.Error(), "deliveries per CPU-second") || strings.Contains(err.Error(), "bytes per connection") {
		t.Errorf("missing fanout: err = %v", err)
	}
	approxEq(t, "bytes/conn filled anyway", in.BytesPerConn, 2050)
	_, err = PlanFromResults(PlanInput{DeliveriesPerCPUSec: 1}, nil)
	if err == nil || !strings.Contains(err.Error(), "bytes per connection") {
		t.Errorf("missing idle: err = %v", err)
	}
	if _, err = PlanFromResults(PlanInput{BytesPerConn: 1, DeliveriesPerCPUSec: 1}, nil); err != nil {
		t.Errorf("everything given: err = %v", err)
	}
}

// measuredResults mimic the committed fan-out results: room sizes 2,000,
// 500 and 100, the last both as a fanout and as a ramp.
func measuredResults() []*Result {
	lat := func(p99us float64) *Latency { return &Latency{P99: p99us} }
	fanout := func(rooms, members string, s Step) *Result {
		return &Result{Scenario: "fanout", Params: map[string]string{"rooms": rooms, "members": members,
			"json": "fanout-" + rooms + "x" + members + ".json"}, Steps: []Step{s}}
	}
	return []*Result{
		{Scenario: "idle", Steps: []Step{{Label: "18000", Conns: 18000, BytesPerConn: 2048}}},
		// 400,000 delivered/s, 1 M per CPU-second: the best case.
		fanout("1", "2000", Step{Label: "1x2000@200", Duration: 10, Expected: 4_000_000, Delivered: 4_000_000, GatewayCPU: 4, Latency: lat(100_000)}),
		// With slow readers: never part of a profile.
		{Scenario: "fanout", Params: map[string]string{"rooms": "1", "members": "2000", "slow": "200"}, Steps: []Step{
			{Label: "slow", Duration: 10, Expected: 9_000_000, Delivered: 9_000_000, GatewayCPU: 1, SlowReaders: 200, Latency: lat(1)}}},
		// 200,000 delivered/s, 266,667 per CPU-second.
		fanout("10", "500", Step{Label: "10x500@400", Duration: 10, Expected: 2_000_000, Delivered: 2_000_000, GatewayCPU: 7.5, Latency: lat(136_000)}),
		// 200,000 delivered/s, 200,000 per CPU-second.
		fanout("100", "100", Step{Label: "100x100@2000", Duration: 10, Expected: 2_000_000, Delivered: 2_000_000, GatewayCPU: 10, Latency: lat(250_000)}),
		{Scenario: "ramp", Params: map[string]string{"rooms": "100", "members": "100", "json": "ramp-100x100.json"}, Steps: []Step{
			{Label: "100/s", Duration: 5, Expected: 50_000, Delivered: 50_000, GatewayCPU: 1, Latency: lat(3_800)},      // 10,000/s
			{Label: "800/s", Duration: 5, Expected: 400_000, Delivered: 400_000, GatewayCPU: 5, Latency: lat(35_800)},   // 80,000/s
			{Label: "3200/s", Duration: 5, Expected: 1_600_000, Delivered: 1_500_000, GatewayCPU: 1, Latency: lat(9e6)}, // lost: out
		}},
	}
}

func TestPlanProfileChoice(t *testing.T) {
	all := measuredResults()
	for _, c := range []struct {
		size float64
		want float64
	}{
		{60, 100},    // not the 2,000-member best case
		{50, 100},    // below everything measured: the smallest
		{1500, 2000}, // 2,000 is 1.33x away, 500 is 3x
		{400, 500},
		{5000, 2000}, // above everything measured: the largest
		{1000, 500},  // 2x either way: the smaller
	} {
		in := examplePlanInput()
		in.DeliveriesPerCPUSec = 0
		in.AvgRoomSize = c.size
		in, err := PlanFromResults(in, all)
		if err != nil {
			t.Fatal(err)
		}
		if in.Profile == nil || in.Profile.RoomSize != c.want {
			t.Errorf("room size %g: profile %+v, want the %g-member one", c.size, in.Profile, c.want)
		}
	}

	// Only the 100- and 2,000-member results given: 60 still picks 100.
	in := examplePlanInput()
	in.DeliveriesPerCPUSec = 0
	in.AvgRoomSize = 60
	in, err := PlanFromResults(in, []*Result{all[0], all[1], all[4]})
	if err != nil {
		t.Fatal(err)
	}
	if in.Profile == nil || in.Profile.RoomSize != 100 {
		t.Fatalf("profile %+v, want 100 members", in.Profile)
	}

	// The 100-member profile gathers the fanout and the ramp, loss-free
	// steps only, by rate; its best step sets the CPU cost, not the
	// 2,000-member best case.
	in = examplePlanInput()
	in.DeliveriesPerCPUSec = 0
	in.AvgRoomSize = 60
	in, err = PlanFromResults(in, all)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, s := range in.Profile.Steps {
		labels = append(labels, s.Label)
	}
	if got := strings.Join(labels, ","); got != "100/s,800/s,100x100@2000" {
		t.Errorf("100-member profile steps %s", got)
	}
	approxEq(t, "deliveries/CPU-s of the 100-member profile", in.DeliveriesPerCPUSec, 200_000)
	if !strings.Contains(in.DeliveriesPerCPUSecSource, "fanout-100x100.json") || !strings.Contains(in.DeliveriesPerCPUSecSource, `"100x100@2000"`) {
		t.Errorf("CPU source %q", in.DeliveriesPerCPUSecSource)
	}

	// The p99 reported is the step that measured the load of one node: here
	// 1 node at 60,000 deliveries/s, measured by the 80,000/s step (not the
	// 10,000/s one below it, nor the 200,000/s one above).
	in.Users = 15_000
	in.MsgsPerUserPerMin = 4
	in.AvgRoomSize = 60 // 15,000 x 4 / 60 x 60 = 60,000 deliveries/s
	o := Plan(in)
	if o.Nodes != 1 || o.Latency == nil || o.Latency.Label != "800/s" || o.Latency.P99Micros != 35_800 {
		t.Fatalf("nodes %d, latency step %+v, want 1 node measured by 800/s", o.Nodes, o.Latency)
	}
	s := o.String()
	for _, want := range []string{
		`p99 35.8 ms, measured at ramp-100x100.json, 100x100 step "800/s" (80,000 delivered/s)`,
		"extrapolated: rooms of 60 members are planned with the closest measured room size, 100 members",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "above the highest measured") || strings.Contains(s, "conns per node is past") {
		t.Errorf("a measured load is noted as extrapolated:\n%s", s)
	}
}

func TestPlanExtrapolations(t *testing.T) {
	in := examplePlanInput()
	in.DeliveriesPerCPUSec = 0
	in, err := PlanFromResults(in, measuredResults())
	if err != nil {
		t.Fatal(err)
	}
	// 1 M users, room size 50: 1,666,667 deliveries/s at 200,000 per
	// CPU-second is 9 nodes of 1 usable core: 111,111 conns and 185,185
	// deliveries/s each; the 200,000/s step measured that rate, but no
	// process held 111,111 conns.
	o := Plan(in)
	if o.Nodes != 9 || o.Binding != "cpu" {
		t.Fatalf("nodes %d binding %q, want 9 and cpu", o.Nodes, o.Binding)
	}
	approxEq(t, "conns per node", o.ConnsPerNode, 1_000_000.0/9)
	if o.Latency == nil || o.Latency.Label != "100x100@2000" {
		t.Errorf("latency step %+v, want 100x100@2000", o.Latency)
	}
	has := func(o PlanOutput, sub string) bool {
		for _, e := range o.Extrapolations {
			if strings.Contains(e, sub) {
				return true
			}
		}
		return false
	}
	if !has(o, "111,111.11 conns per node is past the ~19,500") {
		t.Errorf("connections past one process not noted: %q", o.Extrapolations)
	}
	if has(o, "above the highest measured") {
		t.Errorf("a measured rate noted as extrapolated: %q", o.Extrapolations)
	}
	if !strings.Contains(o.String(), "note: extrapolated: 111,111.11 conns per node") {
		t.Errorf("String() lacks the extrapolation:\n%s", o)
	}

	// Twice the rate on 2-core nodes used fully: 3,333,333 deliveries/s at
	// 200,000 per CPU-second on 2 cores is 9 nodes at 370,370/s each, above
	// the 200,000/s measured: the p99 is the highest step's, and noted.
	in.MsgsPerUserPerMin = 4
	in.Headroom = 0
	o = Plan(in)
	if o.Latency == nil || o.Latency.Label != "100x100@2000" {
		t.Errorf("latency step %+v, want the highest, 100x100@2000", o.Latency)
	}
	if !has(o, "deliveries/s per node is above the highest measured for 100-member rooms") {
		t.Errorf("rate above the measured not noted: %q", o.Extrapolations)
	}
	if !strings.Contains(o.String(), "below the 370,370.37 deliveries/s per node planned") {
		t.Errorf("String() does not say the latency was measured below the load:\n%s", o)
	}

	// A load a process measured: nothing extrapolated but the room size.
	in = examplePlanInput()
	in.Users = 10_000
	in.AvgRoomSize = 100
	in.DeliveriesPerCPUSec = 0
	in, _ = PlanFromResults(in, measuredResults())
	o = Plan(in)
	if len(o.Extrapolations) != 0 {
		t.Errorf("extrapolations at a measured load: %q", o.Extrapolations)
	}
}

func TestPlanPerNodeAndBinding(t *testing.T) {
	// 100,000 users in rooms of 60 (the 100-member profile: 200,000
	// deliveries per CPU-second) on 2-core, 24 GiB nodes kept half empty.
	in := examplePlanInput()
	in.Users = 100_000
	in.AvgRoomSize = 60
	in.DeliveriesPerCPUSec = 0
	in, err := PlanFromResults(in, measuredResults())
	if err != nil {
		t.Fatal(err)
	}
	// 1 msg/min: 100,000 deliveries/s = 0.5 cores; 100,000 x 5,848 B =
	// 0.045 of 12 GiB. CPU binds.
	in.MsgsPerUserPerMin = 1
	o := Plan(in)
	approxEq(t, "conns one node takes", o.ConnsPerNodeCap, 12_884_901_888.0/(2048+3800))
	approxEq(t, "deliveries one node takes", o.DeliveriesPerNodeCap, 200_000)
	if o.Binding != "cpu" {
		t.Errorf("binding %q, want cpu", o.Binding)
	}
	if s := o.String(); !strings.Contains(s, "one node takes 2,203,300 conns (memory) and 200,000 deliveries/s (CPU); CPU binds first") {
		t.Errorf("String() lacks the per-node answer:\n%s", s)
	}
	// 0.01 msg/min: 1,000 deliveries/s = 0.005 cores, less than memory.
	in.MsgsPerUserPerMin = 0.01
	if o := Plan(in); o.Binding != "memory" {
		t.Errorf("binding %q, want memory", o.Binding)
	}
	// Measured against the 2,000-member best case the same workload would
	// need 5x less CPU: the profile, not the best case, decides.
	in.MsgsPerUserPerMin = 1
	in.AvgRoomSize = 1500
	in.DeliveriesPerCPUSec, in.Profile = 0, nil
	in, _ = PlanFromResults(in, measuredResults())
	approxEq(t, "deliveries/CPU-s of the 2,000-member profile", in.DeliveriesPerCPUSec, 1_000_000)
}

func TestPlanFromFiles(t *testing.T) {
	dir := t.TempDir()
	for i, r := range measuredResults() {
		if err := r.WriteJSON(filepath.Join(dir, fmt.Sprintf("r%d.json", i))); err != nil {
			t.Fatal(err)
		}
	}
	in := examplePlanInput()
	in.DeliveriesPerCPUSec = 0
	in.AvgRoomSize = 400
	in, err := PlanFromFiles(in, dir)
	if err != nil {
		t.Fatal(err)
	}
	// The 10x500 result was the fourth written: named by its file.
	if in.Profile == nil || in.Profile.RoomSize != 500 || in.Profile.Steps[0].Source != filepath.Join(dir, "r3.json") {
		t.Errorf("profile from a directory: %+v", in.Profile)
	}
	if _, err := PlanFromFiles(in, filepath.Join(dir, "missing.json")); err == nil {
		t.Error("a missing file is not an error")
	}
}

// idleWithKernel is an idle result as IdleSteps records it, with the kernel
// bytes per socket of each step; the steps of fewer than 1,000 new
// connections are noise the plan leaves out.
func idleWithKernel() *Result {
	return &Result{Scenario: "idle", Started: time.Date(2026, 12, 2, 9, 30, 0, 0, time.UTC), Steps: []Step{
		{Label: "0", GatewayRSS: 10 << 20, SocketsInUse: 3, KernelSlab: 140_000 << 10},
		{Label: "500", Conns: 500, BytesPerConn: 6000, SocketsInUse: 1003, KernelSlab: 150_000 << 10, KernelBytesPerSocket: 10_240}, // 500 new: left out
		{Label: "1500", Conns: 1500, BytesPerConn: 2100, SocketsInUse: 3003, KernelSlab: 158_000 << 10, KernelBytesPerSocket: 4096},
		{Label: "10000", Conns: 10000, BytesPerConn: 2000, SocketsInUse: 20003, KernelSlab: 216_000 << 10, KernelBytesPerSocket: 3493.65},
		{Label: "5000", Conns: 5000, BytesPerConn: 1950, SocketsInUse: 10003, KernelSlab: 182_000 << 10, KernelBytesPerSocket: 3510.86}, // out of order: steps go by conns
		{Label: "10100", Conns: 10100, BytesPerConn: 1900, SocketsInUse: 20203, KernelSlab: 217_000 << 10, KernelBytesPerSocket: 5120},  // 100 new: left out
	}}
}

func TestPlanKernelMeasured(t *testing.T) {
	fanout := measuredResults()[1]
	in := examplePlanInput()
	in.BytesPerConn, in.DeliveriesPerCPUSec = 0, 0
	in, err := PlanFromResults(in, []*Result{measuredResults()[0], idleWithKernel(), fanout})
	if err != nil {
		t.Fatal(err)
	}
	// The median of 4096, 3510.86 and 3493.65 (steps 1500, 5000 and
	// 10000), from the last idle result, the one BytesPerConn came from.
	approxEq(t, "kernel bytes/socket", in.KernelBytesPerSocket, 3510.86)
	approxEq(t, "bytes/conn", in.BytesPerConn, 1900)
	for _, want := range []string{"measured:", "idle result of 2026-12-02 09:30", `median of 3 step(s) ("1500", "5000", "10000")`, "host-wide"} {
		if !strings.Contains(in.KernelBytesPerSocketSource, want) {
			t.Errorf("kernel source %q lacks %q", in.KernelBytesPerSocketSource, want)
		}
	}
	o := Plan(in)
	// 1,000,000 conns x 3,510.86 B in the kernel; a node's 12 GiB holds
	// 12,884,901,888 / (1,900 + 3,510.86) conns.
	approxEq(t, "kernel memory", o.KernelMemBytes, 3_510_860_000)
	approxEq(t, "conns one node takes", o.ConnsPerNodeCap, 12_884_901_888/(1900+3510.86))
	s := o.String()
	for _, want := range []string{
		"1,000,000 conns x 3,510.86 B/socket (measured) = 3,510,860,000 B (3.27 GiB)",
		"12,884,901,888 B (12.00 GiB) / (1,900 B/conn + 3,510.86 B/socket, measured) = 2,381,303 conns",
		"note: kernel memory per socket (3,510.86 B): measured: idle result of 2026-12-02 09:30",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "assumed") {
		t.Errorf("a measured kernel figure is called assumed:\n%s", s)
	}

	// An even count: the mean of the middle two.
	r := idleWithKernel()
	r.Steps[5].Conns = 11_100 // the last step now adds 1,100 connections: 5120 counts
	if v, _ := idleKernelBytesPerSocket([]*Result{r}); math.Abs(v-(4096+3510.86)/2) > 1e-9 {
		t.Errorf("median of 4 steps = %v, want %v", v, (4096+3510.86)/2)
	}

	// A given value wins over the measured one.
	in = examplePlanInput()
	in.KernelBytesPerSocket = 5000
	in, err = PlanFromResults(in, []*Result{idleWithKernel(), fanout})
	if err != nil || in.KernelBytesPerSocket != 5000 || in.KernelBytesPerSocketSource != "given" {
		t.Errorf("given kernel figure: %g %q, %v", in.KernelBytesPerSocket, in.KernelBytesPerSocketSource, err)
	}
	if s := Plan(in).String(); !strings.Contains(s, "x 5,000 B/socket (given)") || !strings.Contains(s, "kernel memory per socket (5,000 B): given") {
		t.Errorf("String() of a given kernel figure:\n%s", s)
	}
}

func TestPlanKernelAssumed(t *testing.T) {
	// The last idle result measured no kernel figure (an older one did):
	// the assumed constant, not an error, and the plan says so.
	older := idleWithKernel()
	in := examplePlanInput()
	in, err := PlanFromResults(in, append([]*Result{older}, measuredResults()...))
	if err != nil {
		t.Fatal(err)
	}
	if in.KernelBytesPerSocket != AssumedKernelBytesPerSocket || !strings.HasPrefix(in.KernelBytesPerSocketSource, "assumed:") {
		t.Errorf("no kernel figure measured: %g %q, want the assumed %d", in.KernelBytesPerSocket, in.KernelBytesPerSocketSource, AssumedKernelBytesPerSocket)
	}
	s := Plan(in).String()
	for _, want := range []string{"1,000,000 conns x 3,800 B/socket (assumed)", "note: kernel memory per socket (3,800 B): assumed:"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "measured:") {
		t.Errorf("an assumed kernel figure is called measured:\n%s", s)
	}

	// Steps that measured it but each added fewer than 1,000 connections.
	r := &Result{Scenario: "idle", Steps: []Step{
		{Label: "0"},
		{Label: "900", Conns: 900, BytesPerConn: 2000, KernelBytesPerSocket: 3700},
		{Label: "1800", Conns: 1800, BytesPerConn: 2000, KernelBytesPerSocket: 3600},
	}}
	if v, src := idleKernelBytesPerSocket([]*Result{r}); v != 0 || src != "" {
		t.Errorf("steps of 900 connections: %v %q, want none", v, src)
	}

	// Plan alone, by hand: 0 is the assumed figure; negative is a problem.
	o := Plan(examplePlanInput())
	if o.In.KernelBytesPerSocket != AssumedKernelBytesPerSocket || !strings.HasPrefix(o.In.KernelBytesPerSocketSource, "assumed:") {
		t.Errorf("Plan's default kernel figure: %g %q", o.In.KernelBytesPerSocket, o.In.KernelBytesPerSocketSource)
	}
	in = examplePlanInput()
	in.KernelBytesPerSocket = -1
	if o := Plan(in); len(o.Problems) == 0 {
		t.Errorf("negative kernel bytes per socket planned %d nodes", o.Nodes)
	}
}
