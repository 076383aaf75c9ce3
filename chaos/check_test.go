package chaos

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// The checker on hand-made histories: frames as a server would send them,
// fed to clients through the same methods the real ones use (frame for live
// frames and acks, joined for the answer to connect's join), with no
// cluster behind. A clean history must pass; each kind of broken promise
// must fail OK() on its own, through its own counter.

// history is a run of clients in room r0, fed by hand.
type history struct {
	t   *testing.T
	r   *Run
	rep *Report
}

func newHistory(t *testing.T, clients int) *history {
	r := &Run{cfg: Config{Clients: clients, Rooms: 1}.withDefaults(), acks: map[string]map[uint64]string{}}
	for i := range clients {
		r.clients = append(r.clients, &client{run: r, id: i, user: fmt.Sprint("c", i), room: "r0",
			ledger: ledger{got: map[uint64]string{}}, unacked: map[string]sent{}})
	}
	return &history{t: t, r: r}
}

// frame hands client i one server frame, written as JSON.
func (h *history) frame(i int, js string) {
	h.t.Helper()
	h.r.clients[i].frameBytes([]byte(js))
}

// msg delivers room r0's message seq, carrying text, live to clients.
func (h *history) msg(seq int, text string, clients ...int) {
	for _, i := range clients {
		h.frame(i, fmt.Sprintf(`{"type":"message","room":"r0","seq":%d,"ts":1,"from":"x","text":%q}`, seq, text))
	}
}

// ack is client i's send of text acknowledged as seq.
func (h *history) ack(i, seq int, text string) {
	c := h.r.clients[i]
	c.mu.Lock()
	c.unacked["k-"+text] = sent{key: "k-" + text, text: text}
	c.mu.Unlock()
	h.frame(i, fmt.Sprintf(`{"type":"ack","id":"s:k-%s","room":"r0","seq":%d,"ts":1}`, text, seq))
}

// join answers client i's join: its first (resume false) or one after a
// reconnect, with since = its last seq (resume true). msgs are seq:text.
func (h *history) join(i int, resume bool, epoch string, seq int, recovered bool, msgs ...string) {
	h.t.Helper()
	var ms []string
	for _, m := range msgs {
		s, text, _ := strings.Cut(m, ":")
		ms = append(ms, fmt.Sprintf(`{"type":"message","room":"r0","seq":%s,"ts":1,"from":"x","text":%q}`, s, text))
	}
	js := fmt.Sprintf(`{"type":"joined","id":"j","room":"r0","seq":%d,"epoch":%q,"recovered":%v,"messages":[%s]}`,
		seq, epoch, recovered, strings.Join(ms, ","))
	var j map[string]any
	if err := json.Unmarshal([]byte(js), &j); err != nil {
		h.t.Fatalf("%s: %v", js, err)
	}
	h.r.clients[i].joined(j, resume)
}

// start joins every client to r0 (epoch e1) and has them send, in turn,
// and all receive seqs 1-3: a, b, c.
func (h *history) start() {
	var all []int
	for i := range h.r.clients {
		h.join(i, false, "e1", 0, false)
		all = append(all, i)
	}
	for seq, text := range []string{"a", "b", "c"} {
		h.ack(seq%len(all), seq+1, text)
		h.msg(seq+1, text, all...)
	}
}

// report checks the history, once: check adds its totals into the report.
func (h *history) report() *Report {
	if h.rep == nil {
		h.r.check()
		h.rep = &h.r.rep
	}
	return h.rep
}

// broken asserts the history counts exactly want in the field named what,
// and that this is the one problem that fails OK(): so each counter is
// proven to fail a run by itself.
func (h *history) broken(what string, got, want int64) {
	h.t.Helper()
	rep := h.report()
	if got != want {
		h.t.Errorf("%s = %d, want %d\n%s", what, got, want, rep)
	}
	if rep.OK() {
		h.t.Errorf("OK() with %s = %d:\n%s", what, got, rep)
	}
	if p := rep.Problems(); len(p) != 1 {
		h.t.Errorf("problems %q, want only the %s one", p, what)
	}
}

func TestCheckCleanHistory(t *testing.T) {
	h := newHistory(t, 2)
	h.start()
	// Client 1 loses its connection after seq 3 and resumes; 4 and 5 were
	// sent meanwhile, 6 comes live.
	h.ack(0, 4, "d")
	h.msg(4, "d", 0)
	h.ack(0, 5, "e")
	h.msg(5, "e", 0)
	h.join(1, true, "e1", 5, true, "4:d", "5:e")
	h.ack(1, 6, "f")
	h.msg(6, "f", 0, 1)
	// A second resume that missed nothing, and the same ack twice (a
	// retry with its key gets the original ack).
	h.join(0, true, "e1", 6, true)
	h.ack(0, 6, "f")
	// A resume from another epoch, and one that missed more than the
	// history holds, may be recovered:false.
	h2 := newHistory(t, 1)
	h2.start()
	h2.join(0, true, "e2", 9, false, "9:z")
	h2.join(0, true, "e2", 9+100+1, false)
	for _, rep := range []*Report{h.report(), h2.report()} {
		if !rep.OK() || rep.Acked == 0 {
			t.Fatalf("clean history failed:\n%s", rep)
		}
	}
	if rep := h.report(); rep.Expected != 2*6 || rep.Delivered != 2*6 {
		t.Fatalf("expected %d and delivered %d, want 12 and 12", rep.Expected, rep.Delivered)
	}
}

func TestCheckNothingAcked(t *testing.T) {
	h := newHistory(t, 1)
	h.join(0, false, "e1", 0, false)
	if rep := h.report(); rep.OK() {
		t.Fatalf("a run with no acks passed:\n%s", rep)
	}
}

func TestCheckMissing(t *testing.T) {
	h := newHistory(t, 2)
	h.start()
	h.ack(0, 4, "d")
	h.msg(4, "d", 0) // client 1 never gets it
	h.broken("Missing", h.report().Missing, 1)
}

func TestCheckDupDelivery(t *testing.T) {
	h := newHistory(t, 2)
	h.start()
	h.msg(3, "c", 1)
	h.broken("DupDeliveries", h.report().DupDeliveries, 1)
}

func TestCheckGap(t *testing.T) {
	h := newHistory(t, 2)
	h.start()
	// Seq 4 was stored but its ack lost (nobody must have it); client 1
	// gets 5 straight after 3 all the same.
	h.msg(4, "d", 0)
	h.ack(0, 5, "e")
	h.msg(5, "e", 0, 1)
	h.broken("Gaps", h.report().Gaps, 1)
}

func TestCheckGapAfterEmptyJoin(t *testing.T) {
	h := newHistory(t, 1)
	h.join(0, false, "e1", 0, false)
	h.ack(0, 2, "b") // seq 1 stored, ack lost
	h.msg(2, "b", 0)
	h.broken("Gaps", h.report().Gaps, 1)
}

func TestCheckDoubleStored(t *testing.T) {
	h := newHistory(t, 2)
	h.start()
	// A retry stored "c" again, under seq 4, and its ack was lost.
	h.msg(4, "c", 0, 1)
	h.broken("DoubleStored", h.report().DoubleStored, 2)
}

func TestCheckAckConflict(t *testing.T) {
	h := newHistory(t, 2)
	h.start()
	h.ack(1, 3, "x") // seq 3 is "c": acked again for another message
	h.broken("AckConflicts", h.report().AckConflicts, 1)
}

func TestCheckResumeRepeats(t *testing.T) {
	h := newHistory(t, 2)
	h.start()
	h.ack(0, 4, "d")
	h.msg(4, "d", 0)
	// Resumed from 3: 3 is not among what was missed, and 4 comes twice.
	h.join(1, true, "e1", 4, true, "3:c", "4:d", "4:d")
	h.broken("ResumeDups", h.report().ResumeDups, 2)
}

func TestCheckResumeLacks(t *testing.T) {
	for name, tc := range map[string]struct {
		msgs []string
		lack int64
	}{
		"middle": {[]string{"4:d", "6:f"}, 1}, // 5 left out
		"end":    {[]string{"4:d"}, 2},        // the frame says it covers up to 6
	} {
		t.Run(name, func(t *testing.T) {
			h := newHistory(t, 2)
			h.start()
			h.ack(0, 4, "d")
			h.msg(4, "d", 0)
			h.msg(5, "e", 0) // stored, ack lost: only the resume's rule sees it left out
			h.msg(6, "f", 0)
			h.join(1, true, "e1", 6, true, tc.msgs...)
			h.broken("ResumeGaps", h.report().ResumeGaps, tc.lack)
		})
	}
}

func TestCheckResumeNotRecovered(t *testing.T) {
	h := newHistory(t, 2)
	h.start()
	h.ack(0, 4, "d")
	h.msg(4, "d", 0)
	// Same epoch, one message missed, history of 100: the protocol says
	// recovered, even though the newest messages cover what was missed.
	h.join(1, true, "e1", 4, false, "3:c", "4:d")
	h.broken("Unrecovered", h.report().Unrecovered, 1)
}

func TestCheckFaultDropsClients(t *testing.T) {
	for _, name := range []string{"restart-redis", "start-node"} {
		h := newHistory(t, 2)
		h.start()
		h.r.rep.Faults = []*Fault{{Name: "kill-node", Disconnected: 1, Reconnected: 1}, {Name: name, Disconnected: 1}}
		if rep := h.report(); rep.OK() {
			t.Errorf("%s dropped a client and the run passed:\n%s", name, rep)
		}
		h.r.rep.Faults = h.r.rep.Faults[:1] // a node kill drops its clients
		if rep := h.report(); !rep.OK() {
			t.Errorf("kill-node dropping its clients failed the run:\n%s", rep)
		}
	}
}
