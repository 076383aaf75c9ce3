package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config shapes a run.
type Config struct {
	Clients  int           // default 2,000
	Rooms    int           // clients are spread over this many rooms
	Interval time.Duration // between one client's messages
	Settle   time.Duration // sending before the first fault, and between faults
	Drain    time.Duration // after the last send, for deliveries to finish
	Faults   []string      // in order: kill-node, start-node, restart-redis, cut-client
	Log      io.Writer
}

// Fault is what one fault did to the clients.
type Fault struct {
	Name         string
	At           time.Time
	Took         time.Duration // to perform (e.g. until the node was ready again)
	Disconnected int
	Reconnected  int
	ReconnectP50 time.Duration
	ReconnectP99 time.Duration
	Recovered    int // resumes with recovered true
	NotRecovered int
	durations    []time.Duration
}

// Report is the outcome of a run.
type Report struct {
	Clients, Rooms   int
	Sent, Acked      int64
	Delivered        int64 // messages delivered to members, all rooms, after de-duplication
	Expected         int64 // acked messages x members of their room
	Missing          int64 // acked messages a member never got
	DupDeliveries    int64 // a seq delivered twice to a member (before de-duplication)
	DoubleStored     int64 // one message (one key) stored under two seqs
	Gaps             int64
	Faults           []*Fault
	Notes            []string
	Started, Stopped time.Time
}

// Run is one chaos run against a cluster.
type Run struct {
	cfg     Config
	cluster *Cluster
	clients []*client
	writeMu []sync.Mutex

	stop  atomic.Bool
	sent  atomic.Int64
	mu    sync.Mutex
	acks  map[string]map[uint64]string // room -> seq -> text
	fault *Fault
	rep   Report
}

func (r *Run) stopping() bool         { return r.stop.Load() }
func (r *Run) sentOne()               { r.sent.Add(1) }
func (r *Run) wmu(id int) *sync.Mutex { return &r.writeMu[id] }
func (r *Run) note(f string, a ...any) {
	r.mu.Lock()
	r.rep.Notes = append(r.rep.Notes, fmt.Sprintf(f, a...))
	r.mu.Unlock()
}
func (r *Run) logf(f string, a ...any) {
	fmt.Fprintf(r.cfg.Log, time.Now().Format("15:04:05.000 ")+f+"\n", a...)
}
func (r *Run) current() *Fault { r.mu.Lock(); defer r.mu.Unlock(); return r.fault }
func (r *Run) setFault(f *Fault) {
	r.mu.Lock()
	r.fault = f
	r.rep.Faults = append(r.rep.Faults, f)
	r.mu.Unlock()
}
func (r *Run) acked(room string, seq uint64, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.acks[room]
	if m == nil {
		m = map[uint64]string{}
		r.acks[room] = m
	}
	if prev, ok := m[seq]; ok && prev != text {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("room %s seq %d acked as %q and %q", room, seq, prev, text))
	}
	m[seq] = text
}

func (r *Run) disconnected(*client) {
	r.mu.Lock()
	if r.fault != nil {
		r.fault.Disconnected++
	}
	r.mu.Unlock()
}

func (r *Run) reconnected(_ *client, took time.Duration, recovered bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.fault
	if f == nil {
		return
	}
	f.Reconnected++
	f.durations = append(f.durations, took)
	if recovered {
		f.Recovered++
	} else {
		f.NotRecovered++
	}
}

// Execute runs the clients against c, injects the faults, and checks every
// delivery.
func Execute(c *Cluster, cfg Config) (*Report, error) {
	if cfg.Clients <= 0 {
		cfg.Clients = 2000
	}
	if cfg.Rooms <= 0 {
		cfg.Rooms = max(1, cfg.Clients/20)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 5 * time.Second
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	r := &Run{cfg: cfg, cluster: c, writeMu: make([]sync.Mutex, cfg.Clients), acks: map[string]map[uint64]string{}}
	r.rep.Clients, r.rep.Rooms, r.rep.Started = cfg.Clients, cfg.Rooms, time.Now()
	var wg sync.WaitGroup
	ready := make(chan struct{}, cfg.Clients)
	for i := 0; i < cfg.Clients; i++ {
		cl := newClient(r, i)
		r.clients = append(r.clients, cl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.loopReady(ready)
		}()
		if i%50 == 49 {
			time.Sleep(10 * time.Millisecond) // connect in waves, not all at once
		}
	}
	for i := 0; i < cfg.Clients; i++ {
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			r.halt(&wg)
			return nil, fmt.Errorf("only %d of %d clients connected", i, cfg.Clients)
		}
	}
	r.logf("%d clients connected in %d rooms", cfg.Clients, cfg.Rooms)

	// Senders: every client once per interval, spread over the interval.
	sendStop := make(chan struct{})
	var sendWG sync.WaitGroup
	sendWG.Add(1)
	go func() {
		defer sendWG.Done()
		tick := time.NewTicker(cfg.Interval / time.Duration(cfg.Clients))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-sendStop:
				return
			case <-tick.C:
				r.clients[i%cfg.Clients].send()
			}
		}
	}()

	time.Sleep(cfg.Settle)
	for _, name := range cfg.Faults {
		f := &Fault{Name: name, At: time.Now()}
		r.setFault(f)
		r.logf("fault: %s", name)
		var err error
		switch name {
		case "kill-node":
			c.KillNode(0)
		case "start-node":
			err = c.StartNode(0)
		case "restart-redis":
			err = c.RestartRedis()
		case "cut-client":
			for _, cl := range r.clients {
				if cl.cut() {
					r.note("cut-client: %s's TCP stream cut mid-frame", cl.user)
					break
				}
			}
		default:
			err = fmt.Errorf("unknown fault %q", name)
		}
		f.Took = time.Since(f.At)
		if err != nil {
			close(sendStop)
			r.halt(&wg)
			return nil, fmt.Errorf("fault %s: %w", name, err)
		}
		time.Sleep(cfg.Settle)
	}
	close(sendStop)
	sendWG.Wait()
	// Let unacknowledged messages be re-sent and everything delivered.
	deadline := time.Now().Add(cfg.Drain)
	for time.Now().Before(deadline) {
		pending := 0
		for _, cl := range r.clients {
			cl.mu.Lock()
			pending += len(cl.unacked)
			resend := cl.online && len(cl.unacked) > 0
			cl.mu.Unlock()
			if resend {
				cl.sendUnacked()
			}
		}
		if pending == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(time.Second) // the last acks' deliveries
	r.halt(&wg)
	r.rep.Stopped = time.Now()
	r.check()
	return &r.rep, nil
}

// halt stops the clients: it closes every connection until every client
// has returned (one may be half-way through a reconnect).
func (r *Run) halt(wg *sync.WaitGroup) {
	r.stop.Store(true)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		for _, cl := range r.clients {
			cl.mu.Lock()
			if cl.ws != nil {
				_ = cl.ws.Close()
			}
			cl.mu.Unlock()
		}
		select {
		case <-done:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *client) loopReady(ready chan<- struct{}) {
	if !c.connect(true) {
		return
	}
	ready <- struct{}{}
	c.loopConnected()
}

// loopConnected is loop after the first connect.
func (c *client) loopConnected() {
	for {
		c.mu.Lock()
		ws := c.ws
		c.mu.Unlock()
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				break
			}
			c.frameBytes(b)
		}
		ws.Close()
		c.mu.Lock()
		c.ws, c.online = nil, false
		c.mu.Unlock()
		if c.run.stopping() {
			return
		}
		c.run.disconnected(c)
		if !c.connect(false) {
			return
		}
	}
}

// check compares every member's deliveries with the acks of its room.
func (r *Run) check() {
	rep := &r.rep
	rep.Sent = r.sent.Load()
	for _, m := range r.acks {
		rep.Acked += int64(len(m))
	}
	for _, cl := range r.clients {
		cl.mu.Lock()
		acks := r.acks[cl.room]
		rep.Delivered += int64(len(cl.got))
		rep.DupDeliveries += int64(cl.dups)
		rep.Gaps += int64(cl.gaps)
		rep.Expected += int64(len(acks))
		for seq, text := range acks {
			if cl.got[seq] != text {
				rep.Missing++
			}
		}
		seen := map[string]bool{}
		for _, text := range cl.got {
			if text != "" && seen[text] {
				rep.DoubleStored++
			}
			seen[text] = true
		}
		cl.mu.Unlock()
	}
	for _, f := range rep.Faults {
		sort.Slice(f.durations, func(i, j int) bool { return f.durations[i] < f.durations[j] })
		if n := len(f.durations); n > 0 {
			f.ReconnectP50 = f.durations[n/2]
			f.ReconnectP99 = f.durations[min(n-1, n*99/100)]
		}
	}
}

// OK reports whether nothing acknowledged was lost or doubled.
func (rep *Report) OK() bool {
	return rep.Missing == 0 && rep.DoubleStored == 0 && rep.DupDeliveries == 0 && rep.Gaps == 0 && rep.Acked > 0
}

// String is the human summary.
func (rep *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: %d clients in %d rooms, %v\n", rep.Clients, rep.Rooms, rep.Stopped.Sub(rep.Started).Round(time.Second))
	fmt.Fprintf(&b, "%-14s %8s %9s %9s %10s %10s %10s %13s\n", "fault", "took", "dropped", "back", "p50", "p99", "recovered", "not recovered")
	for _, f := range rep.Faults {
		fmt.Fprintf(&b, "%-14s %8v %9d %9d %10v %10v %10d %13d\n", f.Name, f.Took.Round(time.Millisecond), f.Disconnected,
			f.Reconnected, f.ReconnectP50.Round(time.Millisecond), f.ReconnectP99.Round(time.Millisecond), f.Recovered, f.NotRecovered)
	}
	pct := 100.0
	if rep.Expected > 0 {
		pct = 100 * float64(rep.Expected-rep.Missing) / float64(rep.Expected)
	}
	fmt.Fprintf(&b, "messages: %d sent, %d acked; deliveries: %d of %d expected (acked x members) = %.3f%%\n",
		rep.Sent, rep.Acked, rep.Expected-rep.Missing, rep.Expected, pct)
	fmt.Fprintf(&b, "missing %d, stored twice %d, seq delivered twice %d, gaps %d: ", rep.Missing, rep.DoubleStored, rep.DupDeliveries, rep.Gaps)
	if rep.OK() {
		b.WriteString("OK\n")
	} else {
		b.WriteString("FAILED\n")
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}
