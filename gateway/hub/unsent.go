package hub

import "syscall"

// unsentReporter is a Sink that tells its kernel backlog itself (tests,
// wrappers around a socket).
type unsentReporter interface{ Unsent() int64 }

// nbioLinger is *nbio.Conn's SetLinger and descriptor.
type nbioLinger interface {
	SetLinger(onoff, linger int32) error
	SyscallConn() (syscall.RawConn, error)
}

// netLinger is *net.TCPConn's SetLinger (and that of any sink embedding one).
type netLinger interface{ SetLinger(sec int) error }

// guarded is *nbio.Conn's lock and closed flag. nbio marks a socket closed
// under that lock before it closes the descriptor, so while the lock is
// held and the socket is not marked closed, the descriptor is still this
// socket's: not one the kernel has since given to a newer connection,
// whose options a stray setsockopt would change.
type guarded interface {
	Lock()
	Unlock()
	IsClosed() (bool, error)
}

// whileOpen runs f if s is not known to be closed, under s's lock when s
// has one (see guarded).
func whileOpen(s Sink, f func()) {
	g, ok := s.(guarded)
	if !ok {
		f()
		return
	}
	g.Lock()
	defer g.Unlock()
	if closed, _ := g.IsClosed(); !closed {
		f()
	}
}

// kernelUnsent returns the bytes s's kernel socket holds that it has not
// sent the peer yet, 0 when s cannot tell. For a TCP peer that stopped
// reading this is everything written since its receive window closed (up
// to the socket's send buffer, several MiB once Linux has grown it); for
// one that reads it is near 0. Bytes in flight (sent, not yet acknowledged)
// are not counted: on a long path a reader that keeps up has many, and
// that is not a backlog.
//
// Asking a syscall.Conn allocates (its RawConn and the control closure):
// sendLocked asks once per unsentStep bytes queued to a client, not per
// write.
func kernelUnsent(s Sink) int64 {
	switch k := s.(type) {
	case unsentReporter:
		return k.Unsent()
	case syscall.Conn:
		rc, err := k.SyscallConn()
		if err != nil {
			return 0
		}
		var n int64
		whileOpen(s, func() {
			if rc.Control(func(fd uintptr) { n = socketUnsent(fd) }) != nil {
				n = 0
			}
		})
		return n
	}
	return 0
}

// abort drops s at once. A TCP socket is reset (SO_LINGER 0) rather than
// closed: a close leaves what the peer never read in the kernel, a few
// MiB for a peer that stopped reading, for as long as the peer keeps the
// connection open, while a reset frees it now. Only clients that were
// sent a close frame and did not answer it within the grace are aborted,
// so nothing a reading client was due is lost by it.
//
// An nbio socket is shut down, not closed: the poller sees the hang-up and
// closes it on its own goroutine, with the linger set here, which is what
// makes that close a reset. A close from this goroutine would free the
// descriptor while the poller may still hold an event of it, which it
// would then apply to the next socket accepted with the same number
// (docs/nbio.md).
func abort(s Sink) {
	switch k := s.(type) {
	case nbioLinger: // *nbio.Conn
		whileOpen(s, func() {
			_ = k.SetLinger(1, 0)
			if rc, err := k.SyscallConn(); err == nil {
				_ = rc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
			}
		})
		return
	case netLinger: // *net.TCPConn: the runtime guards its descriptor
		_ = k.SetLinger(0)
	}
	_ = s.Close()
}
