package bench

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target is the gateway under test and how to reach it.
type Target struct {
	Addr        string   // host:port of the gateway's public listener
	PID         int      // the gateway's process id, for RSS and CPU (0: unknown)
	Srcs        []string // source addresses to dial from, rotated (127.0.0.x)
	Pollers     int      // client event loop goroutines
	DialFlight  int      // handshakes in flight at once
	DialTimeout time.Duration
	// RetryBusy: a handshake refused with 503 (a node shedding a storm,
	// --handshake-rate) is tried again after a random wait of up to a
	// second, as clients do, for up to this long. 0: a refusal fails.
	RetryBusy time.Duration
	// Proto is the server's protocol (nil: the gateway's) and Path the
	// handshake's path ("": the protocol's default). Idle, connect, fanout
	// and ramp speak any; the other scenarios only the gateway's.
	Proto *Proto
	Path  string
	// Metrics is the gateway's /metrics URL (""; none): each fan-out
	// step then reads its latency breakdown from it (see Breakdown).
	Metrics string
}

// RunID makes room and user names unique per run, so every run starts
// from empty rooms (seq 1) without restarting the gateway.
// The process id keeps worker processes started together apart.
func RunID() string {
	return strconv.FormatInt(time.Now().UnixNano()%1e10, 36) + strconv.FormatInt(int64(os.Getpid()), 36)
}

// dialAll opens n connections, conn i as user(i) joined to rooms(i), with
// at most t.DialFlight handshakes in flight. It records connect latencies
// (from the first attempt's TCP connect to the last joined frame) into h
// when h is not nil. It stops at the first failure; refusals retried under
// t.RetryBusy are counted in e.BusyRetries.
func dialAll(e *Engine, t Target, from, n int, user func(int) string, rooms func(int) []string, h *Histogram) ([]*Conn, error) {
	conns := make([]*Conn, n)
	var next atomic.Int64
	next.Store(int64(from))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	flight := max(1, t.DialFlight)
	for w := 0; w < flight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= from+n {
					return
				}
				first, retried := time.Now(), false
				c, g, err := e.Dial(i, user(i), rooms(i), t.DialTimeout)
				for err != nil && strings.Contains(err.Error(), " 503 ") && time.Since(first) < t.RetryBusy {
					e.busyRetries.Add(1)
					retried = true
					time.Sleep(time.Duration(100+rand.IntN(900)) * time.Millisecond)
					c, g, err = e.Dial(i, user(i), rooms(i), t.DialTimeout)
				}
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("conn %d: %w", i, err)
					}
				} else {
					conns[i-from] = c
					if h != nil {
						took := g.Took
						if retried {
							took = time.Since(first)
						}
						h.Record(took.Microseconds())
					}
				}
				failed := firstErr != nil
				mu.Unlock()
				if failed {
					return
				}
			}
		}()
	}
	wg.Wait()
	return conns, firstErr
}

func selfCPU() float64 { return ProcessCPU(os.Getpid()) }

// Connect opens n connections (each also joins one room) and measures the
// handshake rate and connect latency.
func Connect(t Target, n int) (*Result, error) {
	e, err := newEngineFor(t, t.Pollers)
	if err != nil {
		return nil, err
	}
	defer e.Stop()
	id := RunID()
	h := NewHistogram()
	cpu0, gcpu0 := selfCPU(), ProcessCPU(t.PID)
	start := time.Now()
	_, err = dialAll(e, t, 0, n, func(i int) string { return "c" + id + "-" + strconv.Itoa(i) },
		func(i int) []string { return []string{"c" + id + "-r" + strconv.Itoa(i%100)} }, h)
	took := time.Since(start)
	st := Step{Label: strconv.Itoa(n), Conns: n, Duration: took.Seconds(), Handshakes: h.Count(),
		Latency: h.Summary(), BenchCPU: selfCPU() - cpu0}
	if t.PID > 0 {
		st.GatewayCPU = ProcessCPU(t.PID) - gcpu0
	}
	return &Result{Scenario: "connect", Steps: []Step{st}}, err
}

// FanoutParams shapes a fan-out load: Rooms rooms of Members members each,
// Publishers of those members sending Rate messages per second in all, each
// Payload bytes of text. Slow of each room's members are slow readers
// (see slowReader) with SO_RCVBUF SlowRcvBuf (0: DefaultSlowRcvBuf): they
// join and never read; deliveries and latency are the other members'.
// Timeline keeps per-second figures in each step (always with slow
// readers).
type FanoutParams struct {
	Rooms, Members, Publishers int
	Rate                       float64
	Payload                    int
	Duration, Drain            time.Duration
	Slow, SlowRcvBuf           int
	Timeline                   bool
}

// fast is the number of members per room that read.
func (p FanoutParams) fast() int { return p.Members - p.Slow }

// fanLoad is a connected fan-out load that can be run at several rates.
type fanLoad struct {
	p      FanoutParams
	t      Target
	e      *Engine
	conns  []*Conn
	pubs   []*publisher
	prefix []byte
	slow   []*slowReader

	// dm: members are pairs exchanging direct messages; a delivery is a
	// message arriving in the recipient's inbox (the sender's own copy is
	// seq-checked but not counted).
	dm bool
	// proto is the server's protocol; nil and the gateway's are the same.
	proto *Proto

	delivered, gaps, dups, errs atomic.Int64
	hmu                         [8]sync.Mutex
	hist                        [8]*Histogram

	// With slow readers, latency is also kept per second of the step
	// (see timeline), to show when they start and stop hurting.
	tl timeline
}

type publisher struct {
	c     *Conn
	frame []byte // masked send frame; the timestamp is patched in place
	tsAt  int    // offset of the 19 timestamp digits in frame
	keyAt int    // their offset in the payload, which selects the mask bytes
}

// tsDigits is the width of the send timestamp (Unix ns) in message text.
const tsDigits = 19

// newFanLoad connects the load: every member joins its room, publishers are
// spread over the rooms.
func newFanLoad(t Target, p FanoutParams) (*fanLoad, error) {
	if p.Slow < 0 || p.Slow >= p.Members {
		return nil, fmt.Errorf("bench: slow readers must be 0..members-1 per room")
	}
	if p.Publishers < 1 || p.Publishers > p.Rooms*p.fast() {
		return nil, fmt.Errorf("bench: publishers must be 1..rooms*(members-slow)")
	}
	if err := t.checkRooms(p.Rooms); err != nil {
		return nil, err
	}
	e, err := newEngineFor(t, t.Pollers)
	if err != nil {
		return nil, err
	}
	f := &fanLoad{p: p, t: t, e: e, proto: t.proto()}
	f.resetHist()
	id := RunID()
	roomOf := func(i int) string { return "f" + id + "-r" + strconv.Itoa(i%p.Rooms) }
	e.OnText = f.onText
	f.conns, err = dialAll(e, t, 0, p.Rooms*p.fast(), func(i int) string { return "f" + id + "-" + strconv.Itoa(i) },
		func(i int) []string { return []string{roomOf(i)} }, nil)
	if err != nil {
		e.Stop()
		return nil, err
	}
	if p.Slow > 0 {
		rcv := p.SlowRcvBuf
		if rcv == 0 {
			rcv = DefaultSlowRcvBuf
		}
		f.slow, err = dialSlow(e, t, p.Rooms*p.Slow, func(i int) string { return "f" + id + "-slow" + strconv.Itoa(i) }, roomOf, rcv)
		if err != nil {
			e.Stop()
			return nil, err
		}
	}
	// Joining makes the gateway fan presence events out to every room's
	// members; let that finish before measuring, so the first step's
	// latencies are the load's, not the setup's.
	time.Sleep(time.Second + time.Duration(len(f.conns))*time.Second/5000)
	// Conn i is in room i%Rooms, so the first Publishers conns cover the
	// rooms round-robin.
	for i := 0; i < p.Publishers; i++ {
		c := f.conns[i]
		head, tail := f.proto.publish(c.Room)
		f.pubs = append(f.pubs, newPublisherTail(c, head, tail, p.Payload))
	}
	return f, nil
}

var msgPrefix = []byte(`{"type":"message","room":"`)

// onText checks one delivery: seq order per member, and latency from the
// timestamp the publisher put in the text. Other protocols than the
// gateway's are scanned by theirs (Proto.scan), without seq checks.
func (f *fanLoad) onText(c *Conn, p []byte) {
	if f.proto != nil && f.proto.scan != nil {
		f.proto.scan(p, c, f)
		return
	}
	if !bytes.HasPrefix(p, msgPrefix) {
		if bytes.HasPrefix(p, []byte(`{"type":"error"`)) {
			f.errs.Add(1)
		}
		return
	}
	rest := p[len(msgPrefix):]
	if !bytes.HasPrefix(rest, []byte(c.Room)) || len(rest) <= len(c.Room) || rest[len(c.Room)] != '"' {
		return // not this member's fan-out room (e.g. its inbox)
	}
	seq, ok := field(p, `"seq":`)
	if !ok {
		return
	}
	switch {
	case seq == c.LastSeq+1:
	case seq <= c.LastSeq:
		f.dups.Add(1)
		return
	default:
		f.gaps.Add(int64(seq - c.LastSeq - 1))
	}
	c.LastSeq = seq
	if f.dm && bytes.Contains(p, []byte(`"from":"`+c.User+`"`)) {
		return
	}
	ts := int64(-1)
	if v, ok := field(p, `"text":"b`); ok {
		ts = int64(v)
	}
	f.deliver(c, ts)
}

// deliver counts a delivery to c and, when it carried its send time ts
// (not -1), records its latency.
func (f *fanLoad) deliver(c *Conn, ts int64) {
	f.delivered.Add(1)
	if ts >= 0 {
		now := time.Now().UnixNano()
		lat := (now - ts) / 1000
		i := c.ID & 7
		f.hmu[i].Lock()
		f.hist[i].Record(lat)
		f.hmu[i].Unlock()
		f.tl.record(now, lat)
	}
}

// failed counts an error reply.
func (f *fanLoad) failed(*Conn) { f.errs.Add(1) }

// resetHist starts empty latency histograms.
func (f *fanLoad) resetHist() {
	for i := range f.hist {
		f.hmu[i].Lock()
		f.hist[i] = NewHistogram()
		f.hmu[i].Unlock()
	}
}

// run sends at rate for the duration, waits for the deliveries to drain,
// and returns the step's figures.
func (f *fanLoad) run(label string, rate float64) Step {
	f.delivered.Store(0)
	f.gaps.Store(0)
	f.dups.Store(0)
	f.errs.Store(0)
	f.resetHist()
	var hist0 map[string]buckets
	if f.t.Metrics != "" {
		var err error
		if hist0, err = scrapeHistograms(f.t.Metrics, breakdownSeries); err != nil {
			fmt.Fprintf(os.Stderr, "wsbench: no latency breakdown for %s: %v\n", label, err)
		}
	}
	cpu0, gcpu0 := selfCPU(), ProcessCPU(f.t.PID)
	closed0 := f.e.Closed()
	start := time.Now()
	if len(f.slow) > 0 || f.p.Timeline {
		f.tl.start(start)
	}
	var sent int64
	tick := time.NewTicker(time.Millisecond)
	lastSample := -1
	for now := range tick.C {
		elapsed := now.Sub(start)
		if elapsed >= f.p.Duration {
			break
		}
		if s := int(elapsed / (200 * time.Millisecond)); s != lastSample && f.tl.on.Load() {
			lastSample = s
			f.tl.sample(now, f.t.PID, f.slowOpen())
		}
		due := int64(rate * elapsed.Seconds())
		for ; sent < due; sent++ {
			pub := f.pubs[sent%int64(len(f.pubs))]
			ts := strconv.AppendInt(make([]byte, 0, tsDigits), time.Now().UnixNano(), 10)
			for j := 0; j < tsDigits; j++ {
				pub.frame[pub.tsAt+j] = ts[j] ^ maskKey[(pub.keyAt+j)&3]
			}
			if pub.c.Send(pub.frame) != nil {
				f.errs.Add(1)
			}
		}
	}
	tick.Stop()
	sendDur := time.Since(start)
	perMsg := int64(f.p.fast())
	if f.dm {
		perMsg = 1
	}
	expected := sent * perMsg
	deadline := time.Now().Add(f.p.Drain)
	for f.delivered.Load()+f.gaps.Load() < expected && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if f.tl.on.Load() {
			f.tl.sample(time.Now(), f.t.PID, f.slowOpen())
		}
	}
	h := NewHistogram()
	for i := range f.hist {
		f.hmu[i].Lock()
		h.Merge(f.hist[i])
		f.hmu[i].Unlock()
	}
	st := Step{
		Label: label, Conns: len(f.conns), Duration: sendDur.Seconds(), TargetRate: rate,
		Sent: sent, Expected: expected, Delivered: f.delivered.Load(), Gaps: f.gaps.Load(),
		Duplicates: f.dups.Load(), Errors: f.errs.Load() + f.e.Closed() - closed0, Latency: h.Summary(),
		BenchCPU: selfCPU() - cpu0, SlowReaders: len(f.slow), LoadAvg: LoadAvg(),
	}
	if f.t.PID > 0 {
		st.GatewayCPU = ProcessCPU(f.t.PID) - gcpu0
	}
	st.Timeline = f.tl.stop()
	if hist0 != nil {
		if hist1, err := scrapeHistograms(f.t.Metrics, breakdownSeries); err == nil {
			st.Breakdown = breakdownOf(hist0, hist1)
		}
		if st.Breakdown != nil && sendDur > 0 {
			st.Breakdown.BenchBusy = st.BenchCPU / sendDur.Seconds() / float64(max(1, f.t.Pollers))
		}
	}
	if f.e.Closed() > closed0 {
		fmt.Fprintf(os.Stderr, "wsbench: connections ended during %s: %s\n", label, f.e.CloseInfo())
	}
	return st
}

func (f *fanLoad) stop() {
	closeSlow(f.slow)
	f.e.Stop()
}

// Fanout runs one fan-out load at p.Rate.
func Fanout(t Target, p FanoutParams) (*Result, error) {
	f, err := newFanLoad(t, p)
	if err != nil {
		return nil, err
	}
	defer f.stop()
	label := fmt.Sprintf("%dx%d@%g", p.Rooms, p.Members, p.Rate)
	if p.Slow > 0 {
		label += fmt.Sprintf(" %d slow", p.Slow)
	}
	st := f.run(label, p.Rate)
	res := &Result{Scenario: "fanout", Steps: []Step{st}}
	if n := f.slowNote(); n != "" {
		res.Notes = append(res.Notes, n)
	}
	return res, nil
}

// Ramp runs the fan-out load at each rate in turn, stopping after the first
// step whose p99 exceeds bound or that lost, gapped or doubled anything.
func Ramp(t Target, p FanoutParams, rates []float64, bound time.Duration) (*Result, error) {
	f, err := newFanLoad(t, p)
	if err != nil {
		return nil, err
	}
	defer f.stop()
	res := &Result{Scenario: "ramp"}
	for _, rate := range rates {
		st := f.run(fmt.Sprintf("%g/s", rate), rate)
		res.Steps = append(res.Steps, st)
		if st.Latency.P99 > float64(bound.Microseconds()) || st.Lost() > 0 || st.Gaps > 0 || st.Duplicates > 0 {
			break
		}
		time.Sleep(500 * time.Millisecond) // let queues settle between steps
	}
	return res, nil
}

// DM runs pairs of users exchanging direct messages at rate messages per
// second in all.
func DM(t Target, pairs int, rate float64, payload int, dur, drain time.Duration) (*Result, error) {
	e, err := newEngineFor(t, t.Pollers)
	if err != nil {
		return nil, err
	}
	defer e.Stop()
	p := FanoutParams{Rooms: 1, Members: 2 * pairs, Publishers: 2 * pairs, Rate: rate, Payload: payload, Duration: dur, Drain: drain}
	f := &fanLoad{p: p, t: t, e: e, dm: true}
	f.resetHist()
	e.OnText = f.onText
	id := RunID()
	user := func(i int) string { return "d" + id + "-" + strconv.Itoa(i) }
	f.conns, err = dialAll(e, t, 0, 2*pairs, user, func(int) []string { return nil }, nil)
	if err != nil {
		return nil, err
	}
	for i, c := range f.conns {
		c.Room = "@" + c.User
		peer := user(i ^ 1)
		f.pubs = append(f.pubs, newPublisher(c, `{"type":"dm","to":"`+peer+`","text":"`, payload))
	}
	st := f.run(fmt.Sprintf("%d pairs@%g", pairs, rate), rate)
	return &Result{Scenario: "dm", Steps: []Step{st}}, nil
}

// newPublisher encodes a publisher's frame once: head, then the text: "b",
// the send timestamp digits (patched per send), padding to payload bytes.
func newPublisher(c *Conn, head string, payload int) *publisher {
	return newPublisherTail(c, head, `"}`, payload)
}

// newPublisherTail is newPublisher with tail after the text.
func newPublisherTail(c *Conn, head, tail string, payload int) *publisher {
	text := "b" + strings.Repeat("0", tsDigits) + strings.Repeat("x", max(0, payload-1-tsDigits))
	body := head + text + tail
	frame := Mask([]byte(body))
	inPayload := len(head) + 1
	return &publisher{c: c, frame: frame, tsAt: len(frame) - len(body) + inPayload, keyAt: inPayload}
}

// Churn runs a fan-out load while connections open and close at churn per
// second (each joins one of 10 side rooms and stays for hold), and reports
// the fan-out figures beside the churn handshakes.
func Churn(t Target, p FanoutParams, churn float64, hold time.Duration) (*Result, error) {
	f, err := newFanLoad(t, p)
	if err != nil {
		return nil, err
	}
	defer f.stop()
	ce, err := newEngineFor(t, 1)
	if err != nil {
		return nil, err
	}
	defer ce.Stop()
	id := RunID()
	h := NewHistogram()
	var opened, failed atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		type live struct {
			c  *Conn
			at time.Time
		}
		var open []live
		tick := time.NewTicker(time.Duration(float64(time.Second) / churn))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				for _, l := range open {
					_ = l.c.Close()
				}
				return
			case now := <-tick.C:
				for len(open) > 0 && now.Sub(open[0].at) >= hold {
					_ = open[0].c.Close()
					open = open[1:]
				}
				c, g, err := ce.Dial(i, "ch"+id+"-"+strconv.Itoa(i), []string{"ch" + id + "-r" + strconv.Itoa(i%10)}, t.DialTimeout)
				if err != nil {
					failed.Add(1)
					continue
				}
				h.Record(g.Took.Microseconds())
				opened.Add(1)
				open = append(open, live{c, now})
			}
		}
	}()
	st := f.run(fmt.Sprintf("%dx%d@%g churn %g/s", p.Rooms, p.Members, p.Rate, churn), p.Rate)
	close(stop)
	<-done
	st.Handshakes = opened.Load()
	st.Errors += failed.Load()
	cl := h.Summary()
	res := &Result{Scenario: "churn", Steps: []Step{st}}
	res.Notes = append(res.Notes, fmt.Sprintf("churn: %d connections opened and closed at %g/s (held %v), %d failed; connect p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		opened.Load(), churn, hold, failed.Load(), cl.P50/1000, cl.P99/1000, cl.Max/1000))
	return res, nil
}
