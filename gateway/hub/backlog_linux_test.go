package hub_test

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatgw/gateway/gateway/hub"
)

// tcpSink is the hub's side of a real loopback TCP connection: it reports
// what the kernel took through Written, as the gateway does from nbio's
// callback, and is a syscall.Conn, so the hub asks the kernel (SIOCOUTQNSD)
// what is still unsent. Writes time out rather than block a failing test.
type tcpSink struct {
	*net.TCPConn
	c *hub.Client
}

func (s *tcpSink) Write(b []byte) (int, error) {
	_ = s.SetWriteDeadline(time.Now().Add(2 * time.Second))
	n, err := s.TCPConn.Write(b)
	if n > 0 {
		s.c.Written(n)
	}
	return n, err
}

// tcpPair returns the accepted side of a loopback connection and the
// dialled side, whose receive buffer is rcvbuf bytes (0: the default).
func tcpPair(t *testing.T, rcvbuf int) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	peer, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.(*net.TCPConn), peer.(*net.TCPConn)
}

// A real socket whose peer never reads takes megabytes before a write
// would block (Linux grows the send buffer), so the bytes it did not take
// stay at 0; the hub still closes it with 4001 just past the cap, from
// what the kernel says is unsent.
func TestSlowConsumerRealSocket(t *testing.T) {
	const capBytes = 256 << 10
	srv, peer := tcpPair(t, 4096)
	_ = peer // never read
	h := newHub(t, hub.Config{MaxOutboundBytes: capBytes, BacklogGrace: time.Nanosecond})
	s := &tcpSink{TCPConn: srv}
	c := h.NewClient("slow", s, now())
	s.c = c
	frame := messageFrame("r", 1)
	var queued int
	for queued < 8*capBytes && !c.Closing() {
		c.Send(frame)
		queued += len(frame)
	}
	if c.CloseCode() != hub.CloseSlowConsumer {
		t.Fatalf("after %d bytes to a peer that does not read (pending %d): close code %d, want 4001",
			queued, c.Pending(), c.CloseCode())
	}
	// The peer's own small buffer took a few KiB; the rest counts.
	if most := capBytes + 2*capBytes/8 + 64<<10; queued > most {
		t.Fatalf("closed after %d bytes, want at most %d", queued, most)
	}
}

// A peer that keeps reading leaves nothing unsent for long: the same
// stream to it never trips the cap, even with no grace.
func TestReaderRealSocketNotClosed(t *testing.T) {
	const capBytes = 256 << 10
	srv, peer := tcpPair(t, 0)
	var read atomic.Int64
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := peer.Read(buf)
			read.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	h := newHub(t, hub.Config{MaxOutboundBytes: capBytes, BacklogGrace: time.Nanosecond})
	s := &tcpSink{TCPConn: srv}
	c := h.NewClient("fine", s, now())
	s.c = c
	frame := messageFrame("r", 1)
	var queued int64
	for queued < 8*capBytes {
		c.Send(frame)
		queued += int64(len(frame))
		// Stay within 64 KiB of the reader, as a reader that keeps up
		// does, whatever the scheduler does to its goroutine.
		for queued-read.Load() > 64<<10 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	if c.Closing() {
		t.Fatalf("a peer that reads was closed with %d after %d bytes", c.CloseCode(), queued)
	}
}

// At the end of the close grace a real socket is reset, so the kernel
// drops what the peer never read: the peer sees a reset, not the orderly
// end (FIN) that would come only after all of it.
func TestCloseGraceExpiryResetsRealSocket(t *testing.T) {
	const grace = int64(time.Millisecond)
	srv, peer := tcpPair(t, 4096)
	h := newHub(t, hub.Config{CloseGrace: grace})
	s := &tcpSink{TCPConn: srv}
	c := h.NewClient("slow", s, now())
	s.c = c
	frame := messageFrame("r", 1)
	for i := 0; i < 2000; i++ { // ~200 KB: more than the peer's buffer holds
		c.Send(frame)
	}
	c.Close(hub.CloseSlowConsumer, "slow consumer")
	time.Sleep(2 * time.Millisecond)
	h.Tick(0, now(), int64(time.Hour))

	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, peer)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the peer's read ended with %v, want a connection reset", err)
	}
}
