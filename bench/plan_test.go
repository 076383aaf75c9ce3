package bench

import (
	"math"
	"strings"
	"testing"
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
		"1,000,000 conns x 3800 B/socket = 3,800,000,000 B (3.54 GiB)",
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
		"3800 B",
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
