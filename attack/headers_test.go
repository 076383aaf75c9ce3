package attack

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// maxHeaderBytes is the default of --max-header-bytes.
const maxHeaderBytes = 8192

// TestHeaderBytesCapped: a socket may send at most --max-header-bytes
// before its upgrade completes. Without a cap, an HTTP parser keeps every
// byte of a header line that never ends: eight sockets pin 128 MB, and
// the handshake timeout comes far too late to help.
func TestHeaderBytesCapped(t *testing.T) {
	t.Parallel()
	p := startGateway(t)

	t.Run("4KB of headers still upgrade", func(t *testing.T) {
		c := dialWS(t, p.Addr, "pad", "X-Pad: "+strings.Repeat("p", 4000)+"\r\n")
		c.await(t, 2*time.Second, "welcome", isType("welcome", ""))
	})

	t.Run("never-ending line answered 431 as it arrives", func(t *testing.T) {
		streamHeaderLine(t, p.Addr)
		p.assertHealthy(t)
	})

	t.Run("16 MB header lines do not grow RSS", func(t *testing.T) {
		sockets, each := pick(8, 32), pick(16*mB, 32*mB)
		base := p.rss()
		peak := p.watchRSS()
		var wg sync.WaitGroup
		var sent atomic.Int64
		for range sockets {
			c := dialTCP(t, p.Addr)
			wg.Add(1)
			go func() {
				defer wg.Done()
				sent.Add(floodHeader(c, each))
			}()
		}
		wg.Wait()
		grown := peak() - base
		t.Logf("%d sockets sent %d MB of header; RSS %d MB -> peak +%d MB", sockets, sent.Load()/mB, base/mB, grown/mB)
		if grown > 20*mB {
			t.Errorf("RSS grew by %d MB while %d sockets streamed header lines; want < 20 MB (at most %d bytes each are worth keeping)",
				grown/mB, sockets, maxHeaderBytes)
		}
		p.assertHealthy(t)
	})
}

// streamHeaderLine writes a header line that never ends, 256 bytes every
// 2 ms, and checks the node answers 431 and closes once it is over the cap:
// before 64 KB are sent and within a second of crossing the cap.
func streamHeaderLine(t *testing.T, addr string) {
	c := dialTCP(t, addr)
	start := "GET /ws?user=h HTTP/1.1\r\nHost: " + addr + "\r\nX-Long: "
	var sent atomic.Int64
	var crossed atomic.Int64 // Unix ns when sent passed the cap
	type answer struct {
		sentThen int64
		at       time.Time
		got      []byte
		closed   bool
	}
	answered := make(chan answer, 1)
	go func() {
		buf := make([]byte, 4*kB)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		a := answer{sentThen: sent.Load(), at: time.Now(), got: buf[:n]}
		if err != nil {
			a.closed = closedErr(err)
		} else {
			rest, closed := readToClose(c, time.Second)
			a.got, a.closed = append(a.got, rest...), closed
		}
		answered <- a
	}()

	chunk := []byte(strings.Repeat("a", 256))
	write := func(b []byte) bool {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(b); err != nil {
			return false
		}
		if sent.Add(int64(len(b))) > maxHeaderBytes && crossed.Load() == 0 {
			crossed.Store(time.Now().UnixNano())
		}
		return true
	}
	var a answer
	got := false
	if write([]byte(start)) {
	loop:
		for sent.Load() < 64*kB {
			select {
			case a = <-answered:
				got = true
				break loop
			default:
			}
			if !write(chunk) {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	if !got {
		select {
		case a = <-answered:
		case <-time.After(time.Second):
			t.Fatalf("no answer after %d bytes of a header line that never ends (cap %d)", sent.Load(), maxHeaderBytes)
		}
	}
	if code := statusOf(a.got); code != 431 {
		t.Fatalf("answer to %d bytes of header: %q, want HTTP/1.1 431", a.sentThen, firstLine(a.got))
	}
	if a.sentThen >= 64*kB {
		t.Errorf("431 came only after %d bytes were sent; want it as the bytes arrive (cap %d)", a.sentThen, maxHeaderBytes)
	}
	if at := crossed.Load(); at != 0 && a.at.Sub(time.Unix(0, at)) > time.Second {
		t.Errorf("431 came %v after the header passed the cap; want < 1s", a.at.Sub(time.Unix(0, at)))
	}
	if !a.closed {
		t.Errorf("the socket stayed open within 1s of the 431")
	}
}

// floodHeader streams a header line of up to total bytes as fast as the
// socket takes it and stops when the node closes the socket (or stops
// reading for 5 s). It returns the bytes sent.
func floodHeader(c net.Conn, total int) int64 {
	sent := int64(0)
	n, err := c.Write([]byte("GET /ws?user=m HTTP/1.1\r\nHost: x\r\nX-Long: "))
	sent += int64(n)
	chunk := bytes.Repeat([]byte("b"), 64*kB)
	for err == nil && sent < int64(total) {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		n, err = c.Write(chunk)
		sent += int64(n)
	}
	_ = c.Close()
	return sent
}
