package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chatgw/gateway/bench"
)

// workersFor returns how many processes n connections need: the number
// asked for, or enough that none exceeds the open-file limit.
func workersFor(asked, n int) int {
	if asked > 0 {
		return asked
	}
	per := bench.FilesPerProcess()
	return (n + per - 1) / per
}

// connectWorkers runs the connect scenario in n child processes at once,
// each opening its share, and merges their steps; the gateway's CPU is read
// here, around all of them.
func connectWorkers(c *common, n, conns int) (*bench.Result, error) {
	dir, err := os.MkdirTemp("", "wsbench-workers")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	gcpu0 := bench.ProcessCPU(c.pid)
	start := time.Now()
	var procs []*exec.Cmd
	var files []string
	for w := 0; w < n; w++ {
		f := filepath.Join(dir, fmt.Sprintf("w%d.json", w))
		args := []string{"connect", "--workers", "1", "--conns", strconv.Itoa(share(conns, n, w)),
			"--addr", c.addr, "--src", c.src, "--dial-flight", strconv.Itoa(max(1, c.flight/n)),
			"--dial-timeout", c.dialTimout.String(), "--json", f}
		cmd := exec.Command(os.Args[0], append(args, c.protoArgs()...)...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		procs, files = append(procs, cmd), append(files, f)
	}
	var firstErr error
	for _, p := range procs {
		if err := p.Wait(); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("worker: %w", err)
		}
	}
	parts, err := bench.ReadResults(files...)
	if err != nil {
		return nil, errors.Join(firstErr, err)
	}
	var steps []bench.Step
	for _, p := range parts {
		steps = append(steps, p.Steps...)
	}
	st := bench.MergeSteps(strconv.Itoa(conns), steps)
	if c.pid > 0 {
		st.GatewayCPU = bench.ProcessCPU(c.pid) - gcpu0
	}
	res := &bench.Result{Scenario: "connect", Steps: []bench.Step{st}}
	res.Notes = append(res.Notes, fmt.Sprintf("%d worker processes, %v wall time in all", n, time.Since(start).Round(time.Millisecond)))
	return res, firstErr
}

// idleWorkers runs the idle scenario with its connections spread over n
// child processes ("wsbench hold"): at each step every child grows to its
// share and answers, then the gateway's memory is read here.
func idleWorkers(c *common, n int, steps []int, rooms int, settle time.Duration) (*bench.Result, error) {
	if c.pid <= 0 {
		return nil, fmt.Errorf("idle needs the gateway's --pid to read its memory")
	}
	id := bench.RunID()
	type child struct {
		cmd *exec.Cmd
		in  io.WriteCloser
		out *bufio.Scanner
	}
	var kids []child
	defer func() {
		for _, k := range kids {
			k.in.Close() // a holder closes its connections and exits at the end of its input
			k.cmd.Wait()
		}
	}()
	for w := 0; w < n; w++ {
		args := []string{"hold", "--addr", c.addr, "--src", c.src,
			"--dial-flight", strconv.Itoa(max(1, c.flight/n)), "--dial-timeout", c.dialTimout.String(),
			"--pollers", strconv.Itoa(c.pollers), "--rooms", strconv.Itoa(rooms),
			"--run-id", id, "--tag", "w" + strconv.Itoa(w)}
		cmd := exec.Command(os.Args[0], append(args, c.protoArgs()...)...)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		kids = append(kids, child{cmd, in, bufio.NewScanner(out)})
	}
	grow := func(total int) error {
		for w, k := range kids {
			if _, err := fmt.Fprintln(k.in, share(total, n, w)); err != nil {
				return fmt.Errorf("worker %d: %w", w, err)
			}
		}
		var errs []error
		for w, k := range kids {
			if !k.out.Scan() {
				errs = append(errs, fmt.Errorf("worker %d exited", w))
			} else if line := k.out.Text(); !strings.HasPrefix(line, "ok ") {
				errs = append(errs, fmt.Errorf("worker %d: %s", w, line))
			}
		}
		return errors.Join(errs...)
	}
	res, err := bench.IdleSteps(c.pid, steps, settle, grow)
	if res != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("connections held by %d worker processes", n))
	}
	return res, err
}

// share is worker w's part of total spread over n workers.
func share(total, n, w int) int {
	s := total / n
	if w < total%n {
		s++
	}
	return s
}

// runHold is one of idle's worker processes: it holds connections of one
// run, growing to each count read on stdin (see bench.Holder.Serve).
func runHold(args []string) error {
	c := newCommon("hold")
	rooms := c.fs.Int("rooms", 100, "rooms the connections spread over")
	id := c.fs.String("run-id", "", "the run's id, shared by its workers (names its rooms)")
	tag := c.fs.String("tag", "", "this worker's tag in user names")
	if err := c.fs.Parse(args); err != nil {
		return err
	}
	if *id == "" {
		*id = bench.RunID()
	}
	t, err := c.target()
	if err != nil {
		return err
	}
	h, err := bench.NewHolder(t, *rooms, *id, *tag)
	if err != nil {
		return err
	}
	defer h.Close()
	return h.Serve(os.Stdin, os.Stdout)
}
