package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/internal/wstest"
)

// The load BenchmarkJoinUnderPublishLoad joins under: loadRooms rooms of
// loadMembers members each (all reading), loadRate messages a second in
// all, sent by the first member of each room in turn.
const (
	loadRooms   = 50
	loadMembers = 3
	loadRate    = 2000
	loadTick    = 5 * time.Millisecond
	loadMaxTime = 10 * time.Minute // the load stops by itself after this
)

// BenchmarkJoinUnderPublishLoad: how long a join takes, from the join
// request to the joined reply, on a node whose rooms are busy; a node
// alone (memory) and a node in cluster mode on a redis-server of its own
// (redis). An iteration is a new connection (dialled with the timer
// stopped) joining a room: a fresh one (in cluster mode: a SUBSCRIBE, the
// room's position, the join's read), or one of the busy rooms (subscribed
// already: the join's read). ns/op is the mean join; p50-ms and p99-ms
// its percentiles; load-msg/s and delivered/s what the load did meanwhile.
//
//	go test -run XXX -bench BenchmarkJoinUnderPublishLoad -benchtime 300x ./gateway/
func BenchmarkJoinUnderPublishLoad(b *testing.B) {
	for _, mode := range []string{"memory", "redis"} {
		b.Run(mode, func(b *testing.B) {
			n := benchNode(b, mode == "redis")
			l := startLoad(b, n)
			defer l.stop()
			b.Run("fresh", func(b *testing.B) {
				benchJoins(b, n, l, func(int) string { return "fresh-" + strconv.FormatInt(freshRooms.Add(1), 10) })
			})
			b.Run("busy", func(b *testing.B) {
				benchJoins(b, n, l, func(i int) string { return l.rooms[i%len(l.rooms)] })
			})
		})
	}
}

// freshRooms numbers the fresh rooms: never joined before in the process.
var freshRooms atomic.Int64

func benchNode(b *testing.B, redis bool) *node {
	b.Helper()
	if redis {
		return storeNode(b, "redis")
	}
	return storeNode(b, "memory")
}

// benchJoins runs b.N joins of room(i), each from a new connection.
func benchJoins(b *testing.B, n *node, l *load, room func(i int) string) {
	lat := make([]time.Duration, 0, b.N)
	sent0, got0, t0 := l.sent.Load(), l.delivered.Load(), time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := wstest.Dial(b, n.wsURL("user=j"+strconv.Itoa(i)))
		c.Timeout = 30 * time.Second
		if w, j := c.Next(), c.Next(); w.Str("type") != "welcome" || j.Str("type") != "joined" {
			b.Fatalf("dial: %v, %v", w, j)
		}
		r := room(i)
		b.StartTimer()
		start := time.Now()
		f := c.Request(map[string]any{"type": "join", "id": "j", "room": r})
		took := time.Since(start)
		b.StopTimer()
		if f.Str("type") != "joined" || f.Str("room") != r {
			b.Fatalf("join %s: %v", r, f)
		}
		lat = append(lat, took)
		_ = c.Close()
		b.StartTimer()
	}
	b.StopTimer()
	wall := time.Since(t0).Seconds()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(l.sent.Load()-sent0)/wall, "load-msg/s")
	b.ReportMetric(float64(l.delivered.Load()-got0)/wall, "delivered/s")
}

// load is the background publishing.
type load struct {
	rooms     []string
	sent      atomic.Int64 // messages sent
	delivered atomic.Int64 // frames the members read
	done      chan struct{}
	once      sync.Once
	wg        sync.WaitGroup
}

func (l *load) stop() {
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
}

// startLoad joins the members (plain sockets, read by goroutines that
// count and discard the frames) and starts publishing; the load stops at
// the end of b, or by l.stop. It has run for a second when startLoad
// returns.
func startLoad(b *testing.B, n *node) *load {
	b.Helper()
	l := &load{done: make(chan struct{})}
	var senders []*websocket.Conn
	for k := 0; k < loadRooms; k++ {
		room := fmt.Sprintf("busy-%d", k)
		l.rooms = append(l.rooms, room)
		for m := 0; m < loadMembers; m++ {
			ws := loadMember(b, n, fmt.Sprintf("m%d-%d", k, m), room)
			if m == 0 {
				senders = append(senders, ws)
			}
			go func() { // ends when the socket is closed (at the end of b)
				for {
					_, r, err := ws.NextReader()
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, r)
					l.delivered.Add(1)
				}
			}()
		}
	}
	b.Cleanup(l.stop) // before the sockets and the node go
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(loadTick)
		defer tick.Stop()
		perTick := int(loadRate * loadTick / time.Second)
		end := time.After(loadMaxTime)
		for i := 0; ; {
			select {
			case <-l.done:
				return
			case <-end:
				return
			case <-tick.C:
			}
			for j := 0; j < perTick; j, i = j+1, i+1 {
				k := i % loadRooms
				msg := `{"type":"send","room":"` + l.rooms[k] + `","text":"load ` + strconv.Itoa(i) + `"}`
				if err := senders[k].WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					return // the socket is closed: the benchmark is over
				}
				l.sent.Add(1)
			}
		}
	}()
	time.Sleep(time.Second) // the load runs steadily before the first join
	return l
}

// loadMember connects user and joins room, on a plain socket.
func loadMember(b *testing.B, n *node, user, room string) *websocket.Conn {
	b.Helper()
	status, ws := wstest.Upgrade(b, n.wsURL("user="+user))
	if ws == nil {
		b.Fatalf("%s: upgrade refused: HTTP %d", user, status)
	}
	if err := ws.WriteJSON(map[string]any{"type": "join", "id": "j", "room": room}); err != nil {
		b.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var f wstest.Frame
		_, data, err := ws.ReadMessage()
		if err != nil {
			b.Fatalf("%s: join %s: %v", user, room, err)
		}
		if err := json.Unmarshal(data, &f); err != nil {
			b.Fatal(err)
		}
		if f.Str("id") == "j" {
			if f.Str("type") != "joined" {
				b.Fatalf("%s: join %s: %v", user, room, f)
			}
			break
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	return ws
}
