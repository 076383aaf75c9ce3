package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Storm measures a reconnect storm: while a fan-out load runs on connected
// members, storm new connections (each joining a room, as reconnecting
// clients re-join theirs) are dialled with flight handshakes in flight, so
// that they all arrive within about a second. Three steps: the members'
// latency before, during and after the storm; the notes say how long the
// node took to admit the whole storm and what each handshake cost.
func Storm(t Target, p FanoutParams, storm, flight int) (*Result, error) {
	f, err := newFanLoad(t, p)
	if err != nil {
		return nil, err
	}
	defer f.stop()
	se, err := NewEngine(t.Addr, t.Srcs, t.Pollers)
	if err != nil {
		return nil, err
	}
	defer se.Stop()
	res := &Result{Scenario: "storm"}
	res.Steps = append(res.Steps, f.run("before", p.Rate))

	st := t
	st.DialFlight = flight
	id := RunID()
	h := NewHistogram()
	var rejected atomic.Int64
	type outcome struct {
		took   time.Duration
		failed int
		err    error
	}
	done := make(chan outcome, 1)
	go func() {
		start := time.Now()
		failed, retries, err := stormDial(se, st, storm, id, h)
		rejected.Store(retries)
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
		storm, flight, o.took.Round(time.Millisecond), float64(h.Count())/o.took.Seconds(), cl.P50/1000, cl.P99/1000, cl.Max/1000, rejected.Load(), o.failed))
	if o.err != nil {
		res.Notes = append(res.Notes, "storm: first error: "+o.err.Error())
	}
	return res, nil
}

// stormDial opens n connections with t.DialFlight in flight, as clients
// coming back after their node died would: a handshake refused with 503
// (the node sheds a storm over its --handshake-rate) is tried again after
// a random wait of up to a second, for up to a minute. h gets each
// connection's time from its first attempt to its joined frame. It returns
// the connections that never got in and the refusals retried.
func stormDial(e *Engine, t Target, n int, id string, h *Histogram) (failed int, retries int64, firstErr error) {
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < max(1, t.DialFlight); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				first := time.Now()
				user := "s" + id + "-" + strconv.Itoa(i)
				rooms := []string{"s" + id + "-r" + strconv.Itoa(i%100)}
				for {
					_, _, err := e.Dial(i, user, rooms, t.DialTimeout)
					if err == nil {
						mu.Lock()
						h.Record(time.Since(first).Microseconds())
						mu.Unlock()
						break
					}
					if strings.Contains(err.Error(), " 503 ") && time.Since(first) < time.Minute {
						atomic.AddInt64(&retries, 1)
						time.Sleep(time.Duration(100+rand.IntN(900)) * time.Millisecond)
						continue
					}
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = fmt.Errorf("conn %d: %w", i, err)
					}
					mu.Unlock()
					break
				}
			}
		}()
	}
	wg.Wait()
	return failed, atomic.LoadInt64(&retries), firstErr
}
