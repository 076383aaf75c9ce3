package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// slowReader is a member that stops reading once it has joined: a plain
// blocking socket (no event loop, no goroutine) that completed the
// WebSocket upgrade and its joins and then is never read until the load is
// over. With a small SO_RCVBUF its kernel buffer fills after a few
// kilobytes, and from then on everything the gateway sends it stays on the
// gateway's side: the slow consumer the outbound cap is there for.
type slowReader struct {
	nc net.Conn
	br *bufio.Reader // holds what the greeting read past its last frame
}

// DefaultSlowRcvBuf is the SO_RCVBUF a slow reader asks for (the kernel
// doubles it and applies its minimum).
const DefaultSlowRcvBuf = 4096

// rcvBuf returns a dialer Control that sets SO_RCVBUF before connect, so
// the window the socket advertises is small from its first segment.
func rcvBuf(n int) func(network, address string, rc syscall.RawConn) error {
	if n <= 0 {
		return nil
	}
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}); err != nil {
			return err
		}
		return serr
	}
}

// dialSlow opens n slow readers, reader i as user(i) joined to room(i),
// one handshake at a time (they are few).
func dialSlow(e *Engine, t Target, n int, user, room func(int) string, rcvbuf int) ([]*slowReader, error) {
	out := make([]*slowReader, 0, n)
	for i := 0; i < n; i++ {
		nc, br, _, err := e.greet(user(i), []string{room(i)}, t.DialTimeout, rcvBuf(rcvbuf))
		if err != nil {
			closeSlow(out)
			return nil, fmt.Errorf("slow reader %d: %w", i, err)
		}
		out = append(out, &slowReader{nc: nc, br: br})
	}
	return out, nil
}

func closeSlow(rs []*slowReader) {
	for _, r := range rs {
		_ = r.nc.Close()
	}
}

// SlowFate is what became of the slow readers by the end of a load, found
// by reading each one's backlog once the load is over.
type SlowFate struct {
	Readers     int   // slow readers dialled
	CloseFrames int   // ended with a close frame from the gateway
	Codes       []int // the close codes seen, one per CloseFrames (0: no code)
	Dropped     int   // the socket ended without a close frame (EOF or reset)
	Open        int   // still open when reading stopped
	Bytes       int64 // bytes read back from them in all
}

// readSlowFate reads every slow reader until it ends, or nothing has come
// for idle, or wait has passed, in parallel, and sorts them by how they
// ended. It only runs once the measured load is over: reading makes them
// fast.
func readSlowFate(rs []*slowReader, idle, wait time.Duration) SlowFate {
	f := SlowFate{Readers: len(rs)}
	deadline := time.Now().Add(wait)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cr := &countingReader{r: r.br, nc: r.nc, idle: idle, deadline: deadline}
			code, closed, err := drainFrames(bufio.NewReaderSize(cr, 256<<10))
			mu.Lock()
			defer mu.Unlock()
			f.Bytes += cr.n
			var ne net.Error
			switch {
			case closed:
				f.CloseFrames++
				f.Codes = append(f.Codes, code)
			case errors.As(err, &ne) && ne.Timeout():
				f.Open++
			default:
				f.Dropped++
			}
		}()
	}
	wg.Wait()
	return f
}

// drainFrames reads server frames until a close frame (closed, with its
// code) or an error.
func drainFrames(br *bufio.Reader) (code int, closed bool, err error) {
	for {
		op, p, err := readFrame(br)
		if err != nil {
			return 0, false, err
		}
		if op == 8 {
			if len(p) >= 2 {
				code = int(p[0])<<8 | int(p[1])
			}
			return code, true, nil
		}
	}
}

// countingReader counts the bytes read through it, each read given at
// most idle (and none past deadline).
type countingReader struct {
	r        io.Reader
	nc       net.Conn
	idle     time.Duration
	deadline time.Time
	n        int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	d := time.Now().Add(c.idle)
	if d.After(c.deadline) {
		d = c.deadline
	}
	_ = c.nc.SetReadDeadline(d)
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// String summarises the fate for a result's notes.
func (f SlowFate) String() string {
	codes := map[int]int{}
	for _, c := range f.Codes {
		codes[c]++
	}
	s := fmt.Sprintf("slow readers: %d; after the load, %d had been sent a close frame", f.Readers, f.CloseFrames)
	if len(codes) > 0 {
		s += " ("
		first := true
		for _, c := range []int{4001, 1000, 1001, 1009} {
			if codes[c] > 0 {
				if !first {
					s += ", "
				}
				s += strconv.Itoa(codes[c]) + " x " + strconv.Itoa(c)
				first = false
				delete(codes, c)
			}
		}
		for c, k := range codes {
			if !first {
				s += ", "
			}
			s += strconv.Itoa(k) + " x " + strconv.Itoa(c)
			first = false
		}
		s += ")"
	}
	s += fmt.Sprintf(", %d were dropped without one (EOF or reset), %d were still open; %.1f MiB read back from them",
		f.Dropped, f.Open, float64(f.Bytes)/(1<<20))
	return s
}

// slowOpen returns how many slow readers' sockets are still established,
// by TCP_INFO (a reset or a FIN from the gateway ends that), or -1 when
// the load has none.
func (f *fanLoad) slowOpen() int {
	if len(f.slow) == 0 {
		return -1
	}
	n := 0
	for _, r := range f.slow {
		if established(r.nc) {
			n++
		}
	}
	return n
}

// established reports whether nc's TCP state is ESTABLISHED.
func established(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var state uint8
	if rc.Control(func(fd uintptr) {
		// struct tcp_info starts with tcpi_state.
		var info [232]byte
		l := uint32(len(info))
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&l)), 0)
		if errno == 0 {
			state = info[0]
		}
	}) != nil {
		return false
	}
	return state == tcpEstablished
}

const tcpEstablished = 1 // TCP_ESTABLISHED in linux/tcp_states.h

// slowNote reads the slow readers' fate (if any) and closes them.
func (f *fanLoad) slowNote() string {
	if len(f.slow) == 0 {
		return ""
	}
	fate := readSlowFate(f.slow, time.Second, 10*time.Second)
	closeSlow(f.slow)
	f.slow = nil
	return fate.String()
}
