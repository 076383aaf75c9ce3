package gateway

import (
	"net"
	"net/netip"
	"reflect"
	"unsafe"

	"github.com/lesismal/nbio"
)

// nbio keeps, in every nbio.Conn, the local and remote *net.TCPAddr that
// Go's accept made: two 48-byte addresses whose IPs point into the
// 32-byte sockaddrs they were decoded from, 160 bytes per connection, a
// sixth of an idle connection's heap. nbio has no option to drop them and
// the fields are unexported, so slimAddrs replaces them when the socket
// opens, before nbio's poller or anything else can read them: the remote
// address with a 32-byte netip.AddrPort (same String), the local one with
// the listener's address, shared by every connection (the gateway never
// asks a connection for its local address). The fields are found by name
// and type, so a nbio release that renames or retypes them turns this off
// instead of writing elsewhere; TestSlimAddrs fails then.
var nbioAddrs = findAddrFields()

type addrFields struct {
	ok            bool
	local, remote uintptr // offsets in nbio.Conn of lAddr and rAddr
}

func findAddrFields() addrFields {
	t := reflect.TypeOf(nbio.Conn{})
	addr := reflect.TypeOf((*net.Addr)(nil)).Elem()
	l, okL := t.FieldByName("lAddr")
	r, okR := t.FieldByName("rAddr")
	if !okL || !okR || l.Type != addr || r.Type != addr {
		return addrFields{}
	}
	return addrFields{ok: true, local: l.Offset, remote: r.Offset}
}

// peerAddr is a remote TCP address in 32 bytes.
type peerAddr netip.AddrPort

func (a *peerAddr) Network() string { return "tcp" }
func (a *peerAddr) String() string  { return netip.AddrPort(*a).String() }

// slimAddrs swaps c's addresses as above. It must run before c is shared:
// nbio calls OnOpen before it registers the socket with its poller.
func slimAddrs(c net.Conn, local net.Addr) {
	nc, ok := c.(*nbio.Conn)
	if !ok || !nbioAddrs.ok || local == nil {
		return
	}
	ra, ok := nc.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return
	}
	// Unmap: an IPv4 client of an IPv6 socket prints as IPv4, as its
	// net.TCPAddr did (the per-address caps key on that string).
	ap := ra.AddrPort()
	p := peerAddr(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	base := unsafe.Pointer(nc)
	*(*net.Addr)(unsafe.Add(base, nbioAddrs.remote)) = &p
	*(*net.Addr)(unsafe.Add(base, nbioAddrs.local)) = local
}
