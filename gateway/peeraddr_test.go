package gateway

import (
	"net"
	"testing"

	"github.com/lesismal/nbio"
)

// TestSlimAddrs checks that the pinned nbio still has the address fields
// slimAddrs rewrites, and that a slimmed connection reports the same
// remote address as before, for IPv4, IPv6 and an IPv4 client of an IPv6
// socket, and the listener's address as its local one.
func TestSlimAddrs(t *testing.T) {
	if !nbioAddrs.ok {
		t.Fatal("nbio.Conn has no lAddr/rAddr net.Addr fields: slimAddrs is off (nbio changed?)")
	}
	for _, tc := range []struct{ listen, dial string }{
		{"127.0.0.1:0", "127.0.0.1"},
		{"[::1]:0", "::1"},
		{"[::]:0", "127.0.0.1"},
	} {
		ln, err := net.Listen("tcp", tc.listen)
		if err != nil {
			t.Logf("%s: %v (skipped)", tc.listen, err)
			continue
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		cl, err := net.Dial("tcp", net.JoinHostPort(tc.dial, port))
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		want := sc.RemoteAddr().String()
		if want != cl.LocalAddr().String() {
			t.Fatalf("%s: accepted %s, client is %s", tc.listen, want, cl.LocalAddr())
		}
		nc, err := nbio.NBConn(sc)
		if err != nil {
			t.Fatal(err)
		}
		slimAddrs(nc, ln.Addr())
		if _, slim := nc.RemoteAddr().(*peerAddr); !slim {
			t.Fatalf("%s: remote address is a %T, not slimmed", tc.listen, nc.RemoteAddr())
		}
		if got := nc.RemoteAddr().String(); got != want {
			t.Errorf("%s: remote %q after slimAddrs, want %q", tc.listen, got, want)
		}
		if nc.RemoteAddr().Network() != "tcp" {
			t.Errorf("network %q", nc.RemoteAddr().Network())
		}
		if nc.LocalAddr() != ln.Addr() {
			t.Errorf("%s: local %v, want the listener's %v", tc.listen, nc.LocalAddr(), ln.Addr())
		}
		_ = nc.Close()
		_ = cl.Close()
		_ = ln.Close()
	}
}
