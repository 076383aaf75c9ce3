package bench

import (
	"math"
	"strings"
	"testing"
)

// TestPlanRedis: sharded pub/sub divides the messages over masters;
// classic cannot go past what one master takes; a room's copies go to the
// gateway nodes its members are on.
func TestPlanRedis(t *testing.T) {
	in := examplePlanInput() // 33,333.33 msg/s, rooms of 50, headroom 50%, 2 nodes
	in.RedisPubSub, in.RedisMsgsPerSecPerMaster = "sharded", 10_000
	o := Plan(in)
	if len(o.Problems) > 0 {
		t.Fatalf("problems: %v", o.Problems)
	}
	// 10,000 x 50% = 5,000 msg/s per master; 33,333.33 / 5,000 = 6.67 -> 7.
	approxEq(t, "usable msg/s per master", o.UsableRedisMsgsPerMaster, 5_000)
	if o.RedisMasters != 7 {
		t.Errorf("masters = %d, want 7", o.RedisMasters)
	}
	approxEq(t, "master load", o.RedisMasterUtil, 100_000.0/3/7/10_000)
	// 2 nodes, 50 members: 2 x (1 - (1/2)^50) = 2 nodes per room.
	approxEq(t, "nodes per room", o.NodesPerRoom, 2*(1-math.Pow(0.5, 50)))
	approxEq(t, "copies/s", o.RedisCopiesPerSec, 100_000.0/3*o.NodesPerRoom)
	if s := o.String(); !strings.Contains(s, "=> 7 Redis master(s) with sharded pub/sub") || !strings.Contains(s, "copies") {
		t.Errorf("plan text lacks the Redis lines:\n%s", s)
	}
	if !strings.Contains(strings.Join(o.Extrapolations, "\n"), "7 masters") {
		t.Errorf("more masters than measured is not noted: %v", o.Extrapolations)
	}

	in.RedisPubSub = "classic"
	o = Plan(in)
	if o.RedisMasters != 1 || len(o.Problems) != 1 || !strings.Contains(o.Problems[0], "classic pub/sub cannot carry") {
		t.Errorf("classic over one master's capacity: masters %d, problems %v", o.RedisMasters, o.Problems)
	}
	in.RedisMsgsPerSecPerMaster = 100_000 // 50,000 usable > 33,333
	if o = Plan(in); o.RedisMasters != 1 || len(o.Problems) != 0 {
		t.Errorf("classic within one master: masters %d, problems %v", o.RedisMasters, o.Problems)
	}

	in.RedisMsgsPerSecPerMaster = 0
	if o = Plan(in); len(o.Problems) != 1 || !strings.Contains(o.Problems[0], "unknown") {
		t.Errorf("no Redis figure: %v", o.Problems)
	}
	in.RedisPubSub, in.RedisMsgsPerSecPerMaster = "both", 1
	if o = Plan(in); len(o.Problems) != 1 || !strings.Contains(o.Problems[0], `"both"`) {
		t.Errorf("a bad mode: %v", o.Problems)
	}
	in.RedisPubSub = ""
	if o = Plan(in); o.RedisMasters != 0 || strings.Contains(o.String(), "Redis") {
		t.Errorf("no Redis asked, yet: %d masters\n%s", o.RedisMasters, o.String())
	}
}
