package bench

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Idle ramps to each step's connection count (each connection joined to one
// of rooms rooms plus its inbox), waits settle, and reads the gateway's
// memory: bytes per connection is the slope between steps.
func Idle(t Target, steps []int, rooms int, settle time.Duration) (*Result, error) {
	if t.PID <= 0 {
		return nil, fmt.Errorf("bench: idle needs the gateway's --pid to read its memory")
	}
	h, err := NewHolder(t, rooms, RunID(), "")
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return IdleSteps(t.PID, steps, settle, h.Grow)
}

// IdleSteps runs the idle scenario with grow bringing the open connections
// up to a total; grow may spread them over several processes (see Holder).
//
// Besides the gateway's RSS, each step (the baseline "0" included) records
// the kernel's side: TCP sockets in use and their buffer pages
// (/proc/net/sockstat) and slab memory (/proc/meminfo), and from the
// growth of the last two since the previous step the kernel memory per
// socket. Dividing by sockets rather than connections holds whether the
// clients run on the gateway's host (two sockets per connection) or not.
// Both readings are host-wide (the slab is the whole kernel's; sockstat
// counts the sockets of the network namespace), so anything else running on
// the host adds noise to that figure.
func IdleSteps(pid int, steps []int, settle time.Duration, grow func(total int) error) (*Result, error) {
	res := &Result{Scenario: "idle"}
	prevConns, prevRSS := 0, ProcessRSS(pid)
	prevInuse, prevPages := SockStat()
	prevSlab := KernelSlab()
	res.Steps = append(res.Steps, Step{Label: "0", GatewayRSS: prevRSS,
		SockMemPages: prevPages, SocketsInUse: prevInuse, KernelSlab: prevSlab})
	for _, n := range steps {
		if n <= prevConns {
			continue
		}
		start := time.Now()
		if err := grow(n); err != nil {
			return res, err
		}
		took := time.Since(start)
		time.Sleep(settle)
		rss := ProcessRSS(pid)
		inuse, pages := SockStat()
		slab := KernelSlab()
		res.Steps = append(res.Steps, Step{
			Label: strconv.Itoa(n), Conns: n, Duration: took.Seconds(), Handshakes: int64(n - prevConns),
			GatewayRSS: rss, BytesPerConn: float64(rss-prevRSS) / float64(n-prevConns),
			SockMemPages: pages, SocketsInUse: inuse,
			KernelSlab: slab, KernelBytesPerSocket: kernelBytesPerSocket(prevSlab, prevInuse, slab, inuse),
		})
		prevConns, prevRSS, prevInuse, prevSlab = n, rss, inuse, slab
	}
	return res, nil
}

// kernelBytesPerSocket is the kernel slab memory each socket opened between
// two readings cost: the growth of slab bytes over the growth of TCP
// sockets in use, or 0 unless both grew. A previous reading of 0 is one
// that failed (the gateway's listener alone is a socket in use), not a
// base to grow from. Both are host-wide figures.
func kernelBytesPerSocket(prevSlab, prevSockets, slab, sockets int64) float64 {
	if prevSlab <= 0 || prevSockets <= 0 || slab <= prevSlab || sockets <= prevSockets {
		return 0
	}
	return float64(slab-prevSlab) / float64(sockets-prevSockets)
}

// Holder opens idle connections and keeps them until closed. Several
// holders in several processes share one run's rooms: room names come from
// the run id alone, user names also from the holder's tag.
type Holder struct {
	e     *Engine
	t     Target
	user  func(int) string
	room  func(int) []string
	conns []*Conn
}

// NewHolder starts an idle-connection holder for run id; tag keeps its user
// names apart from other holders of the same run.
func NewHolder(t Target, rooms int, id, tag string) (*Holder, error) {
	rooms = max(1, rooms)
	if err := t.checkRooms(rooms); err != nil {
		return nil, err
	}
	e, err := newEngineFor(t, t.Pollers)
	if err != nil {
		return nil, err
	}
	return &Holder{
		e: e, t: t,
		user: func(i int) string { return "i" + id + tag + "-" + strconv.Itoa(i) },
		room: func(i int) []string { return []string{"i" + id + "-r" + strconv.Itoa(i%rooms)} },
	}, nil
}

// Grow opens connections until n are held.
func (h *Holder) Grow(n int) error {
	if n <= len(h.conns) {
		return nil
	}
	conns, err := dialAll(h.e, h.t, len(h.conns), n-len(h.conns), h.user, h.room, nil)
	if err != nil {
		return err
	}
	h.conns = append(h.conns, conns...)
	return nil
}

// Held is the number of connections held.
func (h *Holder) Held() int { return len(h.conns) }

// Close closes every connection.
func (h *Holder) Close() { h.e.Stop() }

// Serve is a holder's side of a worker process: each line read from r is a
// connection count to grow to, answered on w by "ok N" once N are held or
// "error: ..." when a dial failed. It returns at the end of r.
func (h *Holder) Serve(r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		n, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			err = fmt.Errorf("bad count %q", sc.Text())
		} else {
			err = h.Grow(n)
		}
		if err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
			continue
		}
		fmt.Fprintf(w, "ok %d\n", h.Held())
	}
	return sc.Err()
}
