package hub

import (
	"net"
	"syscall"

	"github.com/lesismal/nbio"
)

// The sockets the gateway hands the hub are *nbio.Conn: they must keep
// the methods kernelUnsent and abort look for, or a slow consumer's kernel
// backlog would silently stop counting and its socket stop being reset.
var (
	_ syscall.Conn = (*nbio.Conn)(nil)
	_ nbioLinger   = (*nbio.Conn)(nil)
	_ guarded      = (*nbio.Conn)(nil)
	_ netLinger    = (*net.TCPConn)(nil)
)
