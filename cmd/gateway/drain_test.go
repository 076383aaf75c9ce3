package main

import (
	"io"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// The README's "Shutdown" promises beyond TestDrainOnSIGTERM: what is left
// at --drain-timeout is dropped and the process still exits 0, and a second
// signal kills it at once.

var droppedLine = regexp.MustCompile(`msg=drained dropped=(\d+)`)

// TestDrainDropsWhatIsLeftAtTimeout: a client that completed its upgrade
// and then never reads or writes never answers the 1001 close, so the drain
// cannot finish early; at --drain-timeout (1 s) the process drops it,
// logs it as dropped, and exits 0 within the timeout plus 2 s. The client's
// socket holds the 1001 close frame and then ends.
func TestDrainDropsWhatIsLeftAtTimeout(t *testing.T) {
	const drain = time.Second
	p := startGateway(t, nil, "--drain-timeout", drain.String())
	mute := rawUpgrade(t, p.addr, "user=mute")
	// Wait until the node counts the connection, so the drain sees it.
	poll(t, 5*time.Second, "the raw connection counted", func() bool { return metric(t, p.admin, "gateway_connections") == 1 })

	start := time.Now()
	p.signal(syscall.SIGTERM)
	if err := p.waitExit(drain + 2*time.Second); err != nil {
		t.Fatalf("exit after the drain timeout: %v, want status 0", err)
	}
	took := time.Since(start)
	// Not before the timeout: the unanswered connection held the drain
	// (start precedes the node's own start of the drain).
	if took < drain {
		t.Errorf("exited %v after SIGTERM, before --drain-timeout %v: the mute client did not hold the drain", took, drain)
	}
	if m := droppedLine.FindStringSubmatch(p.log()); m == nil || m[1] != "1" {
		t.Errorf("drained line %q, want dropped=1", m)
	}
	// Only now does the client read: the frames queued before the drop
	// (welcome, the inbox's joined, the close), then the end of the stream.
	_ = mute.SetReadDeadline(time.Now().Add(2 * time.Second))
	data, err := io.ReadAll(mute)
	if err != nil && !isReset(err) {
		t.Fatalf("reading the dropped socket: %v after %d bytes, want its end", err, len(data))
	}
	if code := closeCode(data); code != 1001 {
		t.Errorf("the mute client was sent close code %d (in %d bytes), want 1001", code, len(data))
	}
	t.Logf("exited 0 %v after SIGTERM with --drain-timeout %v", took.Round(time.Millisecond), drain)
}

// TestSecondSignalKills: with a long drain under way (30 s, several
// clients), a second SIGTERM ends the process at once: run() stops catching
// signals when the drain begins, so the second one has its default effect
// and the process dies by SIGTERM (no clean exit, no profile written).
func TestSecondSignalKills(t *testing.T) {
	p := startGateway(t, nil, "--drain-timeout", "30s")
	for _, u := range []string{"a", "b", "c", "d", "e"} {
		dialNode(t, p.addr, u)
	}
	poll(t, 5*time.Second, "5 connections counted", func() bool { return metric(t, p.admin, "gateway_connections") == 5 })
	p.signal(syscall.SIGTERM)
	// run() gives the signal handler up before the drain turns readiness
	// off, so a 503 means the next signal meets the default action.
	poll(t, 5*time.Second, "/readyz 503 after the first SIGTERM", func() bool { return httpStatus(t, "http://"+p.admin+"/readyz") == 503 })
	// A second Ctrl-C comes a moment later, not in the same instant; the
	// test does not depend on this pause.
	time.Sleep(100 * time.Millisecond)
	if !p.running() {
		t.Fatalf("the first SIGTERM ended the process (%v) with a 30 s drain ahead", p.err)
	}
	// The drain holds connections: the 5 closes are spread over 24 s.
	if n := metric(t, p.admin, "gateway_connections"); n < 4 {
		t.Fatalf("%v connections left 100 ms into a 30 s drain, want at least 4", n)
	}
	start := time.Now()
	p.signal(syscall.SIGTERM)
	err := p.waitExit(time.Second)
	if sig := exitSignal(err); sig != syscall.SIGTERM {
		t.Fatalf("after the second SIGTERM: %v, want killed by SIGTERM", err)
	}
	t.Logf("killed by the second SIGTERM %v after it", time.Since(start).Round(time.Millisecond))
}
