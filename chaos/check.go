package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// What a run checks, from the frames each client receives: every
// acknowledged message reaches every member of its room exactly once, in
// seq order, and a resume returns exactly what was missed (docs/protocol.md
// "Sequence numbers, epochs and resume"). The client (client.go) feeds
// frames in; check turns the ledgers into a Report; OK says whether any
// promise was broken.

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
	Unavailable  int // sends answered unavailable (to be retried with their key)
	durations    []time.Duration
}

// keepsEveryone lists the faults README "Failure behaviour" promises drop
// no client: Redis restarting leaves connections open, and a node starting
// only takes new ones.
var keepsEveryone = map[string]bool{"restart-redis": true, "start-node": true}

// Report is the outcome of a run.
type Report struct {
	Clients, Rooms int
	Sent, Acked    int64
	Delivered      int64 // messages delivered to members, all rooms, after de-duplication
	Expected       int64 // acked messages x members of their room
	Missing        int64 // acked messages a member never got
	DupDeliveries  int64 // a live seq delivered twice to a member
	DoubleStored   int64 // one message (one key) stored under two seqs
	Gaps           int64 // a live seq more than one past the member's last
	AckConflicts   int64 // one seq acknowledged as two different messages
	ResumeDups     int64 // a recovered resume carried a seq the member had, or one seq twice
	ResumeGaps     int64 // seqs a recovered resume lacked between since and joined.seq
	Unrecovered    int64 // resumes answered recovered:false that the protocol says must recover
	Faults         []*Fault
	Notes          []string
	Started        time.Time
	Stopped        time.Time
}

// ledger is one member's record of its room: kept by its client as frames
// arrive, read by check.
type ledger struct {
	epoch       string
	last        uint64            // last seq delivered in the room
	got         map[uint64]string // seq -> text, as delivered (after de-duplication by seq)
	dups        int
	gaps        int
	resumeDups  int
	resumeGaps  int
	unrecovered int
}

// acked records an ack: the seq the server stored text under. The first
// text acked for a seq stays the one members must have got; another text
// for the same seq is counted as a conflict, not silently taken instead.
func (r *Run) acked(room string, seq uint64, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.acks[room]
	if m == nil {
		m = map[uint64]string{}
		r.acks[room] = m
	}
	if prev, ok := m[seq]; ok {
		if prev != text {
			r.rep.AckConflicts++
			r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("room %s seq %d acked as %q and %q", room, seq, prev, text))
		}
		return
	}
	m[seq] = text
}

// joined applies a joined frame: the epoch, and the messages it carries.
// resume says it answers connect's join with since = the last seq
// delivered (c.last, unchanged since: the old connection's reader has
// stopped and the new one has not started). Such an answer is held to
// docs/protocol.md "joined": recovered whenever the epoch is the same and
// everything missed is still in the history, and then exactly the
// messages after since, up to joined.seq.
func (c *client) joined(j map[string]any, resume bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	epoch, _ := j["epoch"].(string)
	seq := uint64(num(j["seq"]))
	msgs, _ := j["messages"].([]any)
	since, sameEpoch := c.last, c.epoch == epoch
	if c.epoch != "" && !sameEpoch {
		c.run.note("epoch of %s changed for %s: history reset", c.room, c.user)
	}
	c.epoch = epoch
	recovered := j["recovered"] == true
	switch {
	case resume && recovered:
		c.resumeLocked(since, seq, msgs)
	case resume && sameEpoch && seq >= since && seq-since <= uint64(c.run.cfg.HistorySize):
		c.unrecovered++
		if c.unrecovered == 1 {
			c.run.note("%s in %s: resume from seq %d to %d not recovered, within the history of %d", c.user, c.room, since, seq, c.run.cfg.HistorySize)
		}
		fallthrough
	default:
		// The newest messages, to resynchronise from: they may overlap
		// what was delivered or leave a gap (counted as Missing if acked).
		for _, m := range msgs {
			if mm, ok := m.(map[string]any); ok {
				c.deliverLocked(mm, false)
			}
		}
	}
	c.last = max(c.last, seq)
}

// resumeLocked takes the messages of a recovered resume: they must be
// since+1, since+2, ... joined.seq, each once. One beyond joined.seq is
// taken, and shows as a duplicate when the live stream brings it again.
func (c *client) resumeLocked(since, seq uint64, msgs []any) {
	next := since + 1
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		s := uint64(num(mm["seq"]))
		switch {
		case s < next:
			c.resumeDups++
			if c.resumeDups == 1 {
				c.run.note("%s in %s: resume from seq %d carried seq %d", c.user, c.room, since, s)
			}
			continue
		case s > next:
			c.resumeGaps += int(s - next)
		}
		c.got[s], _ = mm["text"].(string)
		c.last, next = s, s+1
	}
	if seq >= next {
		c.resumeGaps += int(seq - next + 1)
		c.run.note("%s in %s: recovered resume from seq %d to %d ended at %d", c.user, c.room, since, seq, next-1)
	}
}

func num(v any) float64 { f, _ := v.(float64); return f }

// deliverLocked takes one message: live (every seq once and in order, so
// a repeat or a jump is counted) or from a joined frame that is not a
// recovered resume (dropped if already had, no order promised).
func (c *client) deliverLocked(m map[string]any, live bool) {
	seq := uint64(num(m["seq"]))
	text, _ := m["text"].(string)
	switch {
	case seq <= c.last:
		if _, seen := c.got[seq]; seen && live {
			c.dups++
			if c.dups <= 2 {
				c.run.note("%s in %s got seq %d again (last %d, %d reconnects)", c.user, c.room, seq, c.last, c.reconnects)
			}
		}
		return
	case seq > c.last+1 && live:
		c.gaps++
	}
	c.last = seq
	c.got[seq] = text
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
		rep.ResumeDups += int64(cl.resumeDups)
		rep.ResumeGaps += int64(cl.resumeGaps)
		rep.Unrecovered += int64(cl.unrecovered)
		rep.Expected += int64(len(acks))
		for seq, text := range acks {
			if got, ok := cl.got[seq]; !ok || got != text {
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

// Problems lists every broken promise; a run is good when there is none.
func (rep *Report) Problems() []string {
	var p []string
	for _, c := range []struct {
		n    int64
		what string
	}{
		{rep.Missing, "acked deliveries missing"},
		{rep.DoubleStored, "messages stored twice"},
		{rep.DupDeliveries, "seqs delivered twice"},
		{rep.Gaps, "gaps in live delivery"},
		{rep.AckConflicts, "seqs acked as two messages"},
		{rep.ResumeDups, "seqs a resume returned again"},
		{rep.ResumeGaps, "seqs a recovered resume lacked"},
		{rep.Unrecovered, "resumes not recovered that should have been"},
	} {
		if c.n != 0 {
			p = append(p, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	if rep.Acked == 0 {
		p = append(p, "nothing was acked")
	}
	for _, f := range rep.Faults {
		if keepsEveryone[f.Name] && f.Disconnected > 0 {
			p = append(p, fmt.Sprintf("%s dropped %d clients", f.Name, f.Disconnected))
		}
	}
	return p
}

// OK reports whether nothing acknowledged was lost or doubled, every resume
// was right, and no fault dropped clients it promises to keep.
func (rep *Report) OK() bool { return len(rep.Problems()) == 0 }

// String is the human summary.
func (rep *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: %d clients in %d rooms, %v\n", rep.Clients, rep.Rooms, rep.Stopped.Sub(rep.Started).Round(time.Second))
	fmt.Fprintf(&b, "%-14s %8s %9s %9s %10s %10s %10s %13s %12s\n", "fault", "took", "dropped", "back", "p50", "p99", "recovered", "not recovered", "unavailable")
	for _, f := range rep.Faults {
		fmt.Fprintf(&b, "%-14s %8v %9d %9d %10v %10v %10d %13d %12d\n", f.Name, f.Took.Round(time.Millisecond), f.Disconnected,
			f.Reconnected, f.ReconnectP50.Round(time.Millisecond), f.ReconnectP99.Round(time.Millisecond), f.Recovered, f.NotRecovered, f.Unavailable)
	}
	pct := 100.0
	if rep.Expected > 0 {
		pct = 100 * float64(rep.Expected-rep.Missing) / float64(rep.Expected)
	}
	fmt.Fprintf(&b, "messages: %d sent, %d acked; deliveries: %d of %d expected (acked x members) = %.3f%%\n",
		rep.Sent, rep.Acked, rep.Expected-rep.Missing, rep.Expected, pct)
	fmt.Fprintf(&b, "missing %d, stored twice %d, seq delivered twice %d, gaps %d, acks in conflict %d; "+
		"resumes: %d seqs again, %d lacking, %d not recovered that should be: ",
		rep.Missing, rep.DoubleStored, rep.DupDeliveries, rep.Gaps, rep.AckConflicts, rep.ResumeDups, rep.ResumeGaps, rep.Unrecovered)
	if p := rep.Problems(); len(p) == 0 {
		b.WriteString("OK\n")
	} else {
		b.WriteString("FAILED: " + strings.Join(p, ", ") + "\n")
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}
