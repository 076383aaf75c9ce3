package bench

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The harness against the real peer servers, each started here on a free
// loopback port, when scripts/peers.sh has built them into bin/peers/: a
// light fan-out must arrive whole in each protocol.
func TestPeersLive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not starting the peer servers")
	}
	peers := filepath.Join("..", "bin", "peers")
	for _, tc := range []struct {
		name  string
		proto *Proto
		need  string // the file that must exist
		cmd   func(port string) *exec.Cmd
		rooms int
	}{
		{"gorilla", ProtoBroadcast, filepath.Join(peers, "gorilla-chat"), func(port string) *exec.Cmd {
			return exec.Command(filepath.Join(peers, "gorilla-chat"), "-addr", "127.0.0.1:"+port)
		}, 1},
		{"node", ProtoBroadcast, filepath.Join(peers, "node", "node_modules", "ws", "package.json"), func(port string) *exec.Cmd {
			return exec.Command("node", filepath.Join(peers, "node", "server.js"), port, "127.0.0.1")
		}, 1},
		{"centrifugo", ProtoCentrifugo, filepath.Join(peers, "centrifugo"), func(port string) *exec.Cmd {
			return exec.Command(filepath.Join(peers, "centrifugo"), "-c", filepath.Join("peers", "centrifugo.json"), "--http_server.port", port)
		}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(tc.need); err != nil {
				t.Skipf("%s is not built (bash scripts/peers.sh builds it): %v", tc.name, err)
			}
			port := freePort(t)
			cmd := tc.cmd(port)
			if err := cmd.Start(); err != nil {
				t.Skipf("cannot start %s: %v", tc.name, err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			addr := "127.0.0.1:" + port
			for i := 0; ; i++ {
				if c, err := net.Dial("tcp", addr); err == nil {
					c.Close()
					break
				}
				if i == 100 {
					t.Fatalf("%s did not listen on %s within 10 s", tc.name, addr)
				}
				time.Sleep(100 * time.Millisecond)
			}
			tgt := Target{Addr: addr, PID: cmd.Process.Pid, Srcs: []string{"127.0.0.1"}, Pollers: 1, DialFlight: 8,
				DialTimeout: 5 * time.Second, Proto: tc.proto}
			res, err := Fanout(tgt, FanoutParams{Rooms: tc.rooms, Members: 30, Publishers: tc.rooms, Rate: 30, Payload: 100,
				Duration: time.Second, Drain: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			s := res.Steps[0]
			if s.Sent == 0 || s.Delivered != s.Expected || s.Expected != s.Sent*30 || s.Errors != 0 || s.Latency.Count != s.Delivered {
				t.Fatalf("sent %d, expected %d, delivered %d (latencies %d), errors %d; want every message to every member",
					s.Sent, s.Expected, s.Delivered, s.Latency.Count, s.Errors)
			}
		})
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
