// Package redistest runs a real redis-server for tests: on a free loopback
// port, without persistence, stopped when the test ends. Tests that need
// Redis fail (they do not skip) when redis-server is missing: the test
// command installs it (scripts/test.sh).
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	Port int
	cmd  *exec.Cmd
	dir  string // with persistence: where the append-only file lives
}

// Start runs a redis-server on a free port and stops it at the end of t.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (scripts/test.sh installs it with apt-get)")
	}
	s := &Server{t: t, Port: freePort(t)}
	s.start()
	t.Cleanup(s.Kill)
	return s
}

// StartPersistent is Start with an append-only file synced on every write,
// so that Restart keeps every acknowledged write.
func StartPersistent(t testing.TB) *Server {
	t.Helper()
	s := Start(t)
	s.Kill()
	s.dir = t.TempDir()
	s.start()
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the redis:// URL of database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

func (s *Server) start() {
	s.t.Helper()
	args := []string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--protected-mode", "no", "--loglevel", "warning"}
	if s.dir != "" {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always", "--dir", s.dir)
	} else {
		args = append(args, "--appendonly", "no")
	}
	s.cmd = exec.Command("redis-server", args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	if !answers(s.Addr()) {
		s.Kill()
		s.t.Fatalf("redis-server on port %d did not answer PING", s.Port)
	}
}

// answers waits up to 10 s for addr to answer PING.
func answers(addr string) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if ping(addr) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprint(c, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Kill stops the server at once (SIGKILL: no save, nothing kept).
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart kills the server and starts it again on the same port: empty
// without persistence (a crash), with every acknowledged write with it.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Sentinel runs a redis-sentinel monitoring master under the name
// "mymaster", stopped at the end of t; it returns the Sentinel's address.
func Sentinel(t testing.TB, master *Server) string {
	t.Helper()
	port := freePort(t)
	conf := fmt.Sprintf("port %d\nbind 127.0.0.1\nsentinel resolve-hostnames yes\n"+
		"sentinel monitor mymaster 127.0.0.1 %d 1\nsentinel down-after-milliseconds mymaster 1000\n", port, master.Port)
	dir := t.TempDir()
	path := dir + "/sentinel.conf"
	if err := writeFile(path, conf); err != nil {
		t.Fatal(err)
	}
	return spawn(t, "redis-sentinel", port, path, "--sentinel")
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }

// Cluster runs a Redis Cluster of three masters (no replicas), stopped at
// the end of t, and returns their addresses.
func Cluster(t testing.TB) []string {
	t.Helper()
	var addrs []string
	for i := 0; i < 3; i++ {
		port, dir := clusterPort(t), t.TempDir()
		addrs = append(addrs, spawn(t, "cluster node", port, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf", "--dir", dir,
			"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning"))
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Wait until every node agrees the cluster is up.
	deadline := time.Now().Add(15 * time.Second)
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		for {
			out, _ := exec.Command("redis-cli", "-h", host, "-p", port, "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster never ok on %s: %s", a, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return addrs
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// clusterPort returns a free port whose cluster bus port (10000 above it)
// is free too: a cluster node that cannot bind its bus exits at once, and
// a port from the kernel's ephemeral range often has its bus port over
// 65535 or taken by a client socket.
func clusterPort(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := freePort(t)
		if port+10000 > 65535 {
			continue
		}
		if bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
			_ = bus.Close()
			return port
		}
	}
	t.Fatal("no port with a free cluster bus port in 100 tries")
	return 0
}

// spawn runs redis-server with args, listening on port, until the end of
// t, and returns its address once it answers PING.
func spawn(t testing.TB, what string, port int, args ...string) string {
	t.Helper()
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if !answers(addr) {
		t.Fatalf("%s on %s did not answer PING", what, addr)
	}
	return addr
}
