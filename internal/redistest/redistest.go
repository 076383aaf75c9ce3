// Package redistest runs a real redis-server for tests: on a free loopback
// port, without persistence, stopped when the test ends; also a Sentinel
// and Redis Clusters (cluster.go) whose slots can be moved and whose
// masters can fail over under a test. Tests that need Redis fail (they do
// not skip) when redis-server is missing: the test command installs it
// (scripts/test.sh).
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

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
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
