package bench

import (
	"fmt"
	"strconv"
	"time"
)

// Storm measures a reconnect storm: while a fan-out load runs on connected
// members, storm new connections (each joining a room, as reconnecting
// clients re-join theirs) are dialled with flight handshakes in flight, so
// that they all arrive within about a second; a handshake the node sheds
// with 503 is retried after a jittered wait, as clients do. Three steps: the members'
// latency before, during and after the storm; the notes say how long the
// node took to admit the whole storm and what each handshake cost.
func Storm(t Target, p FanoutParams, storm, flight int) (*Result, error) {
	f, err := newFanLoad(t, p)
	if err != nil {
		return nil, err
	}
	defer f.stop()
	se, err := newEngineFor(t, t.Pollers)
	if err != nil {
		return nil, err
	}
	defer se.Stop()
	res := &Result{Scenario: "storm"}
	res.Steps = append(res.Steps, f.run("before", p.Rate))

	st := t
	st.DialFlight = flight
	st.RetryBusy = time.Minute
	id := RunID()
	h := NewHistogram()
	type outcome struct {
		took   time.Duration
		failed int
		err    error
	}
	done := make(chan outcome, 1)
	go func() {
		start := time.Now()
		conns, err := dialAll(se, st, 0, storm, func(i int) string { return "s" + id + "-" + strconv.Itoa(i) },
			func(i int) []string { return []string{"s" + id + "-r" + strconv.Itoa(i%100)} }, h)
		failed := 0
		for _, c := range conns {
			if c == nil {
				failed++
			}
		}
		done <- outcome{time.Since(start), failed, err}
	}()
	during := f.run(fmt.Sprintf("storm of %d", storm), p.Rate)
	o := <-done
	during.Handshakes = h.Count()
	during.Errors += int64(o.failed)
	res.Steps = append(res.Steps, during)
	res.Steps = append(res.Steps, f.run("after", p.Rate))
	cl := h.Summary()
	res.Notes = append(res.Notes, fmt.Sprintf("storm: %d connections dialled with %d in flight; all admitted (welcomed and joined) in %v, %.0f handshakes/s; time to admission from the first attempt p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d attempts refused with 503 and retried after a jittered wait; %d failed",
		storm, flight, o.took.Round(time.Millisecond), float64(h.Count())/o.took.Seconds(), cl.P50/1000, cl.P99/1000, cl.Max/1000, se.BusyRetries(), o.failed))
	if o.err != nil {
		res.Notes = append(res.Notes, "storm: first error: "+o.err.Error())
	}
	return res, nil
}
