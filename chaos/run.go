package chaos

import (
	"fmt"
	"io"
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
	// HistorySize is the nodes' --history-size (default 100, the
	// gateway's): a resume that missed no more than this must be recovered.
	HistorySize int
	Log         io.Writer
}

// withDefaults fills what cfg leaves zero.
func (cfg Config) withDefaults() Config {
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
	if cfg.HistorySize <= 0 {
		cfg.HistorySize = 100
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	return cfg
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
func (r *Run) disconnected(*client) {
	r.mu.Lock()
	if r.fault != nil {
		r.fault.Disconnected++
	}
	r.mu.Unlock()
}

func (r *Run) unavailable() {
	r.mu.Lock()
	if r.fault != nil {
		r.fault.Unavailable++
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
	cfg = cfg.withDefaults()
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
	// The last acks' deliveries: at least a second, so that a late
	// duplicate still shows, then until every member has every acked
	// message or the drain time is up again (a loaded machine delivers
	// later, not less; what is still missing then is reported).
	time.Sleep(time.Second)
	for end := time.Now().Add(cfg.Drain); time.Now().Before(end) && !r.allDelivered(); {
		time.Sleep(100 * time.Millisecond)
	}
	r.halt(&wg)
	r.rep.Stopped = time.Now()
	r.check()
	return &r.rep, nil
}

// allDelivered reports whether every member has every message acked in
// its room so far.
func (r *Run) allDelivered() bool {
	r.mu.Lock()
	acked := make(map[string][]uint64, len(r.acks))
	for room, m := range r.acks {
		for seq := range m {
			acked[room] = append(acked[room], seq)
		}
	}
	r.mu.Unlock() // not held with a client's: clients take r.mu under theirs
	for _, cl := range r.clients {
		cl.mu.Lock()
		for _, seq := range acked[cl.room] {
			if _, ok := cl.got[seq]; !ok {
				cl.mu.Unlock()
				return false
			}
		}
		cl.mu.Unlock()
	}
	return true
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
