package bench

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// serverFrame is an unmasked server frame.
func serverFrame(op byte, payload []byte) []byte {
	return append([]byte{0x80 | op, byte(len(payload))}, payload...)
}

// A slow reader's end is told from what reading it back finds: a close
// frame (with its code), the end of the stream without one, or nothing
// before the deadline.
func TestReadSlowFate(t *testing.T) {
	var rs []*slowReader
	var servers []net.Conn
	for i := 0; i < 3; i++ {
		c, s := net.Pipe()
		t.Cleanup(func() { c.Close(); s.Close() })
		rs = append(rs, &slowReader{nc: c, br: bufio.NewReaderSize(c, 4096)})
		servers = append(servers, s)
	}
	text := serverFrame(1, []byte(`{"type":"message"}`))
	go func() { // closed with 4001 after two messages
		_, _ = servers[0].Write(append(append(append([]byte{}, text...), text...), serverFrame(8, []byte{0x0F, 0xA1, 's'})...))
	}()
	go func() { // one message, then the socket ends
		_, _ = servers[1].Write(text)
		_ = servers[1].Close()
	}()
	// servers[2] stays silent and open.

	start := time.Now()
	f := readSlowFate(rs, 200*time.Millisecond, time.Minute)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v: a silent reader should be given up after the idle time", took)
	}
	if f.Readers != 3 || f.CloseFrames != 1 || len(f.Codes) != 1 || f.Codes[0] != 4001 || f.Dropped != 1 || f.Open != 1 {
		t.Fatalf("fate %+v; want 3 readers: one closed 4001, one dropped, one open", f)
	}
	if want := int64(3*len(text) + 5); f.Bytes != want {
		t.Fatalf("read back %d bytes, want %d", f.Bytes, want)
	}
	s := f.String()
	for _, part := range []string{"slow readers: 3", "1 had been sent a close frame (1 x 4001)", "1 were dropped", "1 were still open"} {
		if !strings.Contains(s, part) {
			t.Errorf("note %q lacks %q", s, part)
		}
	}
}

// The timeline buckets deliveries by second of receipt, ignores what comes
// before start or after stop, and keeps the largest samples of a second.
func TestTimeline(t *testing.T) {
	var tl timeline
	t0 := time.Now()
	tl.record(t0.UnixNano(), 5) // not started: ignored
	if got := tl.stop(); got != nil {
		t.Fatalf("a timeline never started returned %v", got)
	}
	tl.start(t0)
	sec := int64(time.Second)
	for i := int64(1); i <= 100; i++ {
		tl.record(t0.UnixNano()+100, i*1000) // 1..100 ms in second 0
	}
	tl.record(t0.UnixNano()+2*sec+1, 7000) // second 2; second 1 has none
	tl.record(t0.UnixNano()-1, 1)          // before the start: ignored
	got := tl.stop()
	if len(got) != 3 {
		t.Fatalf("got %d seconds, want 3: %+v", len(got), got)
	}
	if got[0].Deliveries != 100 || got[0].P50 < 49 || got[0].P50 > 51 || got[0].P99 < 98 || got[0].Max < 99 || got[0].Max > 101 {
		t.Errorf("second 0: %+v; want 100 deliveries, p50 ~50, p99 ~99, max ~100 ms", got[0])
	}
	if got[1].Deliveries != 0 || got[2].Deliveries != 1 || got[2].Max < 6.9 || got[2].Max > 7.1 {
		t.Errorf("seconds 1 and 2: %+v %+v", got[1], got[2])
	}
	if tl.stop() != nil {
		t.Error("a stopped timeline still returns entries")
	}
	tl.start(t0)
	tl.sample(t0.Add(1500*time.Millisecond), 0, 7)
	tl.sample(t0.Add(1600*time.Millisecond), 0, 3)
	got = tl.stop()
	if len(got) != 2 || got[1].SlowOpen != 3 || got[0].SlowOpen != 0 {
		t.Errorf("samples: %+v; want second 1 with the fewest slow readers open (3)", got)
	}
}

// A slow reader counts as open while its socket is established, and not
// once the other side has reset it.
func TestEstablished(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	f := &fanLoad{slow: []*slowReader{{nc: c}}}
	if n := f.slowOpen(); n != 1 {
		t.Fatalf("slowOpen = %d on an established socket, want 1", n)
	}
	_ = s.(*net.TCPConn).SetLinger(0)
	_ = s.Close() // reset
	deadline := time.Now().Add(5 * time.Second)
	for f.slowOpen() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("socket still counted open after a reset")
		}
		time.Sleep(time.Millisecond)
	}
	if n := (&fanLoad{}).slowOpen(); n != -1 {
		t.Fatalf("slowOpen without slow readers = %d, want -1", n)
	}
}

func TestFanoutParamsSlow(t *testing.T) {
	for _, p := range []FanoutParams{
		{Rooms: 1, Members: 10, Publishers: 1, Slow: 10},
		{Rooms: 1, Members: 10, Publishers: 1, Slow: -1},
		{Rooms: 2, Members: 10, Publishers: 17, Slow: 2}, // only 16 members read
	} {
		if _, err := newFanLoad(Target{Addr: "127.0.0.1:1"}, p); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}
