// Fan-out pass time per member count, over real loopback TCP sockets:
//
//	go test -run=NONE -bench=Pass -benchtime=200x ./bench
//
// Each iteration publishes one ~100-byte message to a room of N members,
// each a TCP connection whose far end a reader drains, and waits until
// every reader has the frame: ns/op is the wall time of one pass, from
// Publish to the last member's frame read, and ns/member divides it by N.
// Unlike the discard-sink benchmarks (fanout_test.go) this counts the
// kernel's side of a write, which is nearly all of a pass on loopback.
//
// workers=1 is one fan-out worker writing the room; split runs every
// worker (one per CPU) on its own share of the members at once, as the
// gateway does above Config.SplitRoomsAbove: on 2 cores a split pass
// takes about half the wall time for the same CPU.
package bench

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"testing"

	"github.com/chatgw/gateway/gateway/hub"
)

// passRoom is a hub with one room whose members are TCP sockets.
type passRoom struct {
	fanout
	conns []net.Conn
}

func newPassRoom(b *testing.B, members int, cfg hub.Config) *passRoom {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	p := &passRoom{}
	p.h = hub.New(cfg)
	b.Cleanup(func() {
		p.h.Stop()
		for _, c := range p.conns {
			_ = c.Close()
		}
	})
	joined := func() ([]byte, uint64, error) { return nil, 0, nil }
	for i := 0; i < members; i++ {
		far, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatalf("member %d: %v (the open-file limit caps members at about half of it)", i, err)
		}
		near, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		p.conns = append(p.conns, far, near)
		go p.drain(far)
		c := p.h.NewClient("user"+itoa(i), near.(*net.TCPConn), 0)
		if _, err := p.h.Join(c, room, joined); err != nil {
			b.Fatal(err)
		}
	}
	p.store = p.next
	p.pass() // warm up, outside the timing
	return p
}

// pass publishes one message and waits until every member has read it.
func (p *passRoom) pass() {
	p.done.Add(len(p.conns) / 2)
	p.h.Publish(room, p.store)
	p.done.Wait()
}

// drain reads frames from c until it closes, counting each one done.
func (p *passRoom) drain(c net.Conn) {
	buf := make([]byte, 64<<10)
	var pend []byte
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		pend = append(pend, buf[:n]...)
		k, rest := completeFrames(pend)
		pend = append(pend[:0], rest...)
		p.done.Add(-k)
	}
}

// completeFrames counts the complete message frames at the start of b (the
// presence events of the joins are skipped) and returns the bytes after
// the last complete frame.
func completeFrames(b []byte) (int, []byte) {
	n := 0
	for len(b) >= 2 {
		hl, l := 2, int(b[1]&0x7F)
		if l == 126 {
			if len(b) < 4 {
				break
			}
			hl, l = 4, int(b[2])<<8|int(b[3])
		}
		if l == 127 || len(b) < hl+l {
			break // no 64-bit lengths here: frames are ~100 bytes
		}
		if bytes.HasPrefix(b[hl:hl+l], msgPrefix) {
			n++
		}
		b = b[hl+l:]
	}
	return n, b
}

func benchPass(b *testing.B, members int, split bool) {
	cfg := hub.Config{Workers: 1}
	if split {
		cfg.Workers, cfg.SplitRoomsAbove = runtime.GOMAXPROCS(0), 1
	}
	p := newPassRoom(b, members, cfg)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.pass()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*members), "ns/member")
}

func BenchmarkPass(b *testing.B) {
	for _, n := range []int{100, 500, 1000, 2000, 5000} {
		b.Run(fmt.Sprintf("members=%d/workers=1", n), func(b *testing.B) { benchPass(b, n, false) })
		b.Run(fmt.Sprintf("members=%d/split", n), func(b *testing.B) { benchPass(b, n, true) })
	}
}
