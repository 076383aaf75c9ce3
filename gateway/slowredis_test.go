package gateway_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/internal/redistest"
)

// TestSlowRedisJoinDoesNotStallOtherRooms: Redis turns slow for one node's
// command connections (every reply delayed by 800 ms, its pub/sub
// connection untouched) while a room of that node goes on receiving,
// published from another node every 20 ms. A join of a new room on the
// slow node waits for its history reads, and for nothing else: the
// messages of the busy room reach their member meanwhile as fast as
// before. This fails if a Redis command runs on the node's subscriber
// goroutine or under a room's lock (see package cluster): the subscriber
// would then stall the busy room for a whole Redis reply.
func TestSlowRedisJoinDoesNotStallOtherRooms(t *testing.T) {
	onePass(t)
	const (
		delay = 800 * time.Millisecond // every reply of Redis to the slow node's commands
		every = 20 * time.Millisecond  // between two messages of the busy room
	)
	r := redistest.Start(t)
	proxy := redistest.NewProxy(t, r.Addr())
	nodeOn := func(id, url string) *node {
		n := startNode(t, func(c *gateway.Config) {
			c.RedisURL, c.NodeID = url, id
			c.Rate, c.Burst = 10000, 10000
		})
		waitReady(t, n, 200)
		return n
	}
	slow, fast := nodeOn("slow", proxy.URL()), nodeOn("fast", r.URL())

	x := slow.dial(t, "x")
	x.Join("steady")
	pub := fast.dial(t, "pub")
	pub.Join("steady")
	joiner := slow.dial(t, "joiner")
	pub.SendText("steady", "warm")
	x.WaitFor("message", func(f frame) bool { return f.Str("text") == "warm" })
	if proxy.PubSubConns() == 0 {
		t.Fatalf("the slow node's pub/sub connection did not go through the proxy (%d connections)", proxy.Conns())
	}

	// x's deliveries of "steady", stamped when they arrive. Nothing else
	// reads x's frames from here on.
	type got struct {
		seq       uint64
		sent, arr time.Time
	}
	var (
		mu       sync.Mutex
		arrivals = map[int]got{}
	)
	stopRead := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			select {
			case <-stopRead:
				return
			case f, ok := <-x.Frames:
				if !ok {
					return
				}
				now := time.Now()
				i, sent, ok := parseStamp(f.Str("text"))
				if f.Str("type") != "message" || f.Str("room") != "steady" || !ok {
					continue
				}
				mu.Lock()
				arrivals[i] = got{seq: f.Num("seq"), sent: sent, arr: now}
				mu.Unlock()
			}
		}
	}()
	defer func() { close(stopRead); <-readDone }()

	proxy.SetDelay(delay)
	defer proxy.SetDelay(0)

	// The publisher: its own goroutine writes to its socket (its frames are
	// read by wstest's goroutine and left in the channel, ~2 per message).
	stopPub := make(chan struct{})
	pubDone := make(chan int)
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		i := 0
		defer func() { pubDone <- i }()
		for {
			select {
			case <-stopPub:
				return
			case <-tick.C:
			}
			b := fmt.Sprintf(`{"type":"send","room":"steady","text":"%s"}`, stamp(i, time.Now()))
			if err := pub.WS.WriteMessage(websocket.TextMessage, []byte(b)); err != nil {
				t.Errorf("publisher: %v", err)
				return
			}
			i++
		}
	}()
	stopPublishing := func() int {
		if stopPub == nil {
			return 0
		}
		close(stopPub)
		stopPub = nil
		return <-pubDone
	}
	defer stopPublishing()

	time.Sleep(10 * every) // the room is busy before the join starts
	joiner.Timeout = 10 * time.Second
	start := time.Now()
	j := joiner.Request(map[string]any{"type": "join", "id": "jf", "room": "fresh"})
	end := time.Now()
	took := end.Sub(start)
	if j.Str("type") != "joined" || j.Str("room") != "fresh" || j.Num("seq") != 0 {
		t.Fatalf("join of fresh on the slow node: %v (after %v)", j, took)
	}
	if took < delay {
		t.Fatalf("the join took %v, less than the Redis delay %v: the proxy did not slow the node down", took, delay)
	}
	time.Sleep(10 * every)
	sent := stopPublishing()

	// Every message reaches x, in seq order; those published while the
	// join waited on Redis reach it well before a Redis reply could.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(arrivals)
		mu.Unlock()
		if n >= sent || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	proxy.SetDelay(0)
	mu.Lock()
	defer mu.Unlock()
	var during, all []time.Duration
	var last uint64
	for i := 0; i < sent; i++ {
		g, ok := arrivals[i]
		if !ok {
			t.Fatalf("x never got steady message %d of %d", i, sent)
		}
		if g.seq <= last {
			t.Fatalf("steady message %d has seq %d after %d", i, g.seq, last)
		}
		last = g.seq
		lat := g.arr.Sub(g.sent)
		all = append(all, lat)
		if !g.sent.Before(start) && !g.sent.After(end) {
			during = append(during, lat)
		}
	}
	if least := int(took / every / 2); len(during) < least {
		t.Fatalf("only %d steady messages were published during the %v join, want >= %d", len(during), took, least)
	}
	slices.Sort(during)
	slices.Sort(all)
	worst := during[len(during)-1]
	t.Logf("Redis delay %v on the slow node: join took %v; %d steady messages during it: p50 %v, max %v (all %d: p50 %v, max %v)",
		delay, took.Round(time.Millisecond), len(during), during[len(during)/2].Round(100*time.Microsecond),
		worst.Round(100*time.Microsecond), len(all), all[len(all)/2].Round(100*time.Microsecond), all[len(all)-1].Round(100*time.Microsecond))
	if worst >= delay/2 {
		t.Fatalf("a steady message took %v to arrive while the join waited on Redis (delay %v): deliveries stalled behind the join", worst, delay)
	}
}

// stamp is the text of steady message i sent at t.
func stamp(i int, t time.Time) string {
	return "t|" + strconv.Itoa(i) + "|" + strconv.FormatInt(t.UnixNano(), 10)
}

func parseStamp(s string) (int, time.Time, bool) {
	parts := strings.Split(s, "|")
	if len(parts) != 3 || parts[0] != "t" {
		return 0, time.Time{}, false
	}
	i, err1 := strconv.Atoi(parts[1])
	ns, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, time.Time{}, false
	}
	return i, time.Unix(0, ns), true
}
