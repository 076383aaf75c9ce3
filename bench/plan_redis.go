package bench

import (
	"fmt"
	"math"
)

// The Redis side of a plan: how many Redis Cluster masters carry the
// published messages, with classic or sharded pub/sub.
//
// Every message is one append script on its room's master: it stores the
// message and publishes it. The measured cost is how many of those one
// master runs per second (BenchmarkPublishRedis: pipelined, acked, through
// one redis-server). With sharded pub/sub a message stays on its room's
// shard, so masters divide the messages; with classic pub/sub Redis
// Cluster copies every message to every node, so each master carries all
// of them and more masters add none of that capacity
// (TestPubSubLoadPerMaster measures both).

// redisPlan fills the Redis figures of o once its gateway nodes are known.
func (o *PlanOutput) redisPlan() {
	in := o.In
	switch in.RedisPubSub {
	case "":
		return
	case "classic", "sharded":
	default:
		o.Problems = append(o.Problems, fmt.Sprintf("redis pub/sub %q: want classic or sharded", in.RedisPubSub))
		return
	}
	if in.RedisMsgsPerSecPerMaster <= 0 {
		o.Problems = append(o.Problems, "Redis messages per second per master unknown: give it (BenchmarkPublishRedis measures it)")
		return
	}
	n := float64(o.Nodes)
	// A room's members land on nodes at random (the load balancer does not
	// group them): the expected number of distinct nodes among
	// AvgRoomSize members, each of which receives one copy of the message.
	o.NodesPerRoom = 1
	if n > 1 && in.AvgRoomSize > 0 {
		o.NodesPerRoom = n * (1 - math.Pow(1-1/n, in.AvgRoomSize))
	}
	o.RedisCopiesPerSec = o.MsgsPerSec * o.NodesPerRoom
	o.UsableRedisMsgsPerMaster = in.RedisMsgsPerSecPerMaster * (1 - in.Headroom)
	if o.UsableRedisMsgsPerMaster <= 0 {
		return
	}
	need := o.MsgsPerSec / o.UsableRedisMsgsPerMaster
	if in.RedisPubSub == "classic" {
		// Each master carries every message, however many there are.
		o.RedisMasters = 1
		if need > 1 {
			o.Problems = append(o.Problems, fmt.Sprintf(
				"classic pub/sub cannot carry %s msg/s: every master handles every message, and one takes %s msg/s at this headroom; use sharded pub/sub",
				fmtNum(o.MsgsPerSec), fmtNum(o.UsableRedisMsgsPerMaster)))
		}
		o.RedisMasterUtil = o.MsgsPerSec / in.RedisMsgsPerSecPerMaster
	} else {
		o.RedisMasters = max(1, ceilNodes(need))
		o.RedisMasterUtil = o.MsgsPerSec / float64(o.RedisMasters) / in.RedisMsgsPerSecPerMaster
	}
	o.Extrapolations = append(o.Extrapolations, fmt.Sprintf(
		"Redis: the measured %s msg/s per master published each message to one subscriber; here each goes to %s gateway nodes on average (%s copies/s in all), and the cost of those copies was not measured",
		fmtNum(in.RedisMsgsPerSecPerMaster), fmtNum(o.NodesPerRoom), fmtNum(o.RedisCopiesPerSec)))
	if in.RedisPubSub == "sharded" && o.RedisMasters > 3 {
		o.Extrapolations = append(o.Extrapolations, fmt.Sprintf(
			"Redis: %d masters; sharded pub/sub was measured to divide the messages over 3 (TestPubSubLoadPerMaster), and 256 room buckets spread evenly over up to that many",
			o.RedisMasters))
	}
}

// redisLines is the Redis arithmetic of the plan, if any.
func (o PlanOutput) redisLines() []planLine {
	in := o.In
	if in.RedisPubSub == "" || o.UsableRedisMsgsPerMaster <= 0 {
		return nil
	}
	masters := planLine{"Redis masters", fmt.Sprintf("ceil(%s msg/s / %s msg/s per master) (sharded: masters divide the messages)",
		fmtNum(o.MsgsPerSec), fmtNum(o.UsableRedisMsgsPerMaster)), fmt.Sprint(o.RedisMasters)}
	if in.RedisPubSub == "classic" {
		masters = planLine{"Redis masters", "1 (classic: every master carries every message; more add storage, not pub/sub capacity)",
			fmt.Sprint(o.RedisMasters)}
	}
	return []planLine{
		{"usable Redis msg/s per master", fmt.Sprintf("%s msg/s x %s", fmtNum(in.RedisMsgsPerSecPerMaster), fmtPct(1-in.Headroom)),
			fmtNum(o.UsableRedisMsgsPerMaster) + " msg/s"},
		masters,
		{"load per Redis master", fmt.Sprintf("%s msg/s / %d master(s), as a share of what one takes", fmtNum(o.MsgsPerSec), o.RedisMasters),
			fmtPct(o.RedisMasterUtil)},
		{"gateway nodes per room", fmt.Sprintf("%d x (1 - (1 - 1/%d)^%s members)", o.Nodes, o.Nodes, fmtNum(in.AvgRoomSize)),
			fmtNum(o.NodesPerRoom)},
		{"pub/sub copies", fmt.Sprintf("%s msg/s x %s nodes/room", fmtNum(o.MsgsPerSec), fmtNum(o.NodesPerRoom)),
			fmtNum(o.RedisCopiesPerSec) + " copies/s"},
	}
}
