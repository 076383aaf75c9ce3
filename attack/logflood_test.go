package attack

import (
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// suppressed matches the summary the node writes instead of the lines it
// dropped, with their count.
var suppressed = regexp.MustCompile(`log lines suppressed.*\b[1-9][0-9]*\b`)

// TestLogsCannotBeFlooded: one log line per refused handshake or abnormal
// close lets any client write to the node's disk at line rate. Those lines
// are limited (about 20 a second) and what was dropped is summarized.
func TestLogsCannotBeFlooded(t *testing.T) {
	t.Parallel()
	p := startGateway(t)
	n := pick(500, 5000)
	var ok atomic.Int64
	var wg sync.WaitGroup
	jobs := make(chan int)
	start := time.Now()
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if floodOne(p.Addr, i) {
					ok.Add(1)
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	took := time.Since(start)
	if got := ok.Load(); got < int64(n)*9/10 {
		t.Fatalf("only %d of %d attack connections got their 1002 or 400; the flood did not happen", got, n)
	}

	limit := 150
	if *long {
		limit = 20*int(took/time.Second+1) + 150
	}
	lines := countLines(p.log.String(), "connection closed", "handshake refused")
	t.Logf("%d abnormal connections in %v: %d log lines about them", n, took.Round(time.Millisecond), lines)
	if lines >= limit {
		t.Errorf("%d log lines for %d abnormal connections in %v; want < %d (about 20 a second plus summaries)",
			lines, n, took.Round(time.Millisecond), limit)
	}
	p.assertHealthy(t)

	// The summary comes on the node's tick, within about 10 s; failing
	// that, at shutdown.
	deadline := time.Now().Add(10 * time.Second)
	for !suppressed.MatchString(p.log.String()) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if !suppressed.MatchString(p.log.String()) {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		p.waitExit(5 * time.Second)
	}
	if !suppressed.MatchString(p.log.String()) {
		t.Errorf("no %q line with a count within 10s of the flood, nor at shutdown", "log lines suppressed")
	}
}

// floodOne makes connection i end abnormally: an upgrade followed by a
// frame with a reserved opcode (close 1002, "connection closed"), or a handshake with an
// invalid user name (HTTP 400, "handshake refused"). It reports whether the
// node answered as expected.
func floodOne(addr string, i int) bool {
	if i%2 == 1 {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		if _, err := io.WriteString(c, upgradeRequest(addr, "bad%20name", "")); err != nil {
			return false
		}
		got, _ := readToClose(c, 2*time.Second)
		return statusOf(got) == 400
	}
	c, err := tryDialWS(addr, "f"+strconv.Itoa(i), "")
	if err != nil {
		return false
	}
	defer c.Close()
	_, _ = c.Write(clientFrame(true, 0x3, true, []byte("x"))) // a reserved opcode
	f, _, err := c.awaitClose(2 * time.Second)
	return err == nil && f.closeCode() == 1002
}

// countLines counts the lines of log containing any of subs.
func countLines(log string, subs ...string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		for _, s := range subs {
			if strings.Contains(line, s) {
				n++
				break
			}
		}
	}
	return n
}

// waitExit waits up to d for the process to end by itself.
func (p *proc) waitExit(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}
