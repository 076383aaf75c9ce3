package cluster

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/gateway/backend"
	"github.com/chatgw/gateway/internal/redistest"
)

var scalingLong = flag.Bool("scaling.long", false, "TestPubSubLoadPerMaster: 100,000 messages per cluster size instead of 6,000")

// TestPubSubLoadPerMaster measures what a fixed publish load costs each
// master of a Redis Cluster of one and of three masters, with classic and
// with sharded pub/sub: two nodes, one publishing to 256 rooms, the other
// subscribed to all of them, every message delivered in seq order. Per
// master it reads the appends it ran (EVALSHA calls), the publishes it
// received over the cluster bus and its network output. Classic PUBLISH
// is broadcast to every node over the bus, so each master handles every
// message whatever the cluster's size; SPUBLISH stays on the room's shard,
// so each of three masters handles about a third. The test checks both,
// and that the appends spread over the masters. With SCALING_OUT=file it
// also writes the figures there (bench/results).
func TestPubSubLoadPerMaster(t *testing.T) {
	total := 6000
	if *scalingLong {
		total = 100000
	}
	var report strings.Builder
	for _, mode := range []string{"classic", "sharded"} {
		for _, masters := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/masters=%d", mode, masters), func(t *testing.T) {
				r := pubSubLoad(t, mode == "sharded", masters, total)
				fmt.Fprintf(&report, "%s masters=%d messages=%d elapsed=%s throughput=%.0f/s\n", mode, masters, total,
					r.elapsed.Round(time.Millisecond), float64(total)/r.elapsed.Seconds())
				for _, m := range r.perMaster {
					fmt.Fprintf(&report, "  master %s appends=%d bus_publish_received=%d handled=%d net_output_bytes=%d\n",
						m.addr, m.appends, m.busReceived, m.appends+m.busReceived, m.netOut)
				}
				for _, m := range r.perMaster {
					handled := m.appends + m.busReceived
					if mode == "classic" && (handled < int64(total) || handled > int64(total)*11/10) {
						// An append on its room's master, a bus message on every other.
						t.Errorf("master %s handled %d messages (%d appends + %d over the bus), want every one of %d",
							m.addr, handled, m.appends, m.busReceived, total)
					}
					if mode == "sharded" && (m.busReceived != 0 || handled != m.appends) {
						t.Errorf("master %s received %d publishes over the bus: sharded pub/sub should keep them on their shard", m.addr, m.busReceived)
					}
					if masters > 1 && (m.appends < int64(total/masters/2) || m.appends > int64(total*2/masters)) {
						t.Errorf("master %s ran %d of %d appends: rooms are not spread over the masters", m.addr, m.appends, total)
					}
				}
			})
		}
	}
	t.Log("\n" + report.String())
	if out := os.Getenv("SCALING_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(report.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type masterLoad struct {
	addr                         string
	appends, busReceived, netOut int64
}

type loadResult struct {
	elapsed   time.Duration
	perMaster []masterLoad
}

func pubSubLoad(t *testing.T, sharded bool, masters, total int) loadResult {
	rc := redistest.StartCluster(t, masters, 0)
	node := func(id string, sink Sink) *Node {
		o, err := redis.ParseClusterURL(rc.URL())
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClusterClient(o)
		n := New(Config{Client: c, Cluster: true, Sharded: sharded, NodeID: id, Size: 100, PresenceRefresh: time.Hour,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, sink)
		t.Cleanup(func() { _ = n.Close(); _ = c.Close() })
		for deadline := time.Now().Add(10 * time.Second); !n.Ready(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("node never ready")
			}
		}
		return n
	}
	rec := newRecorder()
	pub, sub := node("pub", newRecorder()), node("sub", rec)
	const rooms = 256
	for i := 0; i < rooms; i++ {
		if err := acquire(sub, fmt.Sprint("r", i)); err != nil {
			t.Fatal(err)
		}
	}
	before := readLoad(t, rc)
	start := time.Now()
	// Closed loop: at most 512 publishes in flight, like a few hundred
	// senders waiting for their acks.
	inflight := make(chan struct{}, 512)
	var wg sync.WaitGroup
	var failed sync.Once
	for i := 0; i < total; i++ {
		inflight <- struct{}{}
		wg.Add(1)
		room := fmt.Sprint("r", i%rooms)
		pub.Publish(room, "u", "", encoder(room, i), func(_ backend.Ack, err error) {
			defer wg.Done()
			<-inflight
			if err != nil {
				failed.Do(func() { t.Errorf("publish: %v", err) })
			}
		})
	}
	wg.Wait()
	// Counted in the recorder: its signal channel drops past 65,536.
	delivered := func() (n int) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, s := range rec.seqs {
			n += len(s)
		}
		return n
	}
	for last, at := 0, time.Now(); delivered() < total; time.Sleep(5 * time.Millisecond) {
		if n := delivered(); n > last {
			last, at = n, time.Now()
		} else if time.Since(at) > 10*time.Second {
			t.Fatalf("only %d of %d messages delivered, none for 10 s", n, total)
		}
	}
	elapsed := time.Since(start)
	// The cluster bus carries classic publishes to the other masters on its
	// own time: the counters are read once they stop moving.
	after := readLoad(t, rc)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		again := readLoad(t, rc)
		// Output bytes move with every INFO read; the message counts settle.
		settled := maps.EqualFunc(again, after, func(a, b masterLoad) bool {
			return a.appends == b.appends && a.busReceived == b.busReceived
		})
		after = again
		if settled {
			break
		}
	}
	rec.mu.Lock()
	for r, seqs := range rec.seqs {
		for i, seq := range seqs {
			if seq != uint64(i+1) {
				t.Errorf("room %s: delivery %d has seq %d", r, i, seq)
				break
			}
		}
	}
	rec.mu.Unlock()
	var out []masterLoad
	for _, a := range rc.MasterAddrs() {
		out = append(out, masterLoad{addr: a,
			appends:     after[a].appends - before[a].appends,
			busReceived: after[a].busReceived - before[a].busReceived,
			netOut:      after[a].netOut - before[a].netOut,
		})
	}
	return loadResult{elapsed: elapsed, perMaster: out}
}

// readLoad reads each master's counters.
func readLoad(t *testing.T, rc *redistest.RedisCluster) map[string]masterLoad {
	m := map[string]masterLoad{}
	for _, a := range rc.MasterAddrs() {
		cmds := rc.Info(t, a, "commandstats")
		stats := rc.Info(t, a, "stats")
		ci := rc.ClusterInfo(t, a)
		m[a] = masterLoad{addr: a,
			appends:     calls(cmds["cmdstat_evalsha"]) + calls(cmds["cmdstat_eval"]),
			busReceived: num(ci["cluster_stats_messages_publish_received"]),
			netOut:      num(stats["total_net_output_bytes"]),
		}
	}
	return m
}

// calls reads calls=N out of a commandstats value
// ("calls=12,usec=34,usec_per_call=2.83,...").
func calls(v string) int64 {
	for _, f := range strings.Split(v, ",") {
		if n, ok := strings.CutPrefix(f, "calls="); ok {
			return num(n)
		}
	}
	return 0
}

func num(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
