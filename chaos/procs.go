// Package chaos stages a chat edge node's worst days against real
// processes: a cluster of gateway nodes on a real redis-server (and
// haproxy in front, when asked), clients in rooms sending with idempotency
// keys and checking every delivery, and faults injected while they run:
// a node killed with SIGKILL and restarted, Redis restarted, a client's TCP
// stream cut mid-frame. The report says, per fault, who reconnected, how
// fast, and whether every acknowledged message reached every member exactly
// once.
package chaos

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// proc is one child process the run may kill and start again.
type proc struct {
	name string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	down bool          // killed by the run and not started again
}

func (p *proc) start() error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.cmd = exec.Command(p.args[0], p.args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.down = false
	done := make(chan struct{})
	p.done = done
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); f.Close(); close(done) }(p.cmd)
	return nil
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() {
	p.down = true
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitFor(what string, d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v", what, d)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return nil
}

func redisPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprint(c, "PING\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

func httpOK(url string) bool {
	c := http.Client{Timeout: 500 * time.Millisecond}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == 200
}

// Cluster is redis-server, the gateway nodes and optionally haproxy.
type Cluster struct {
	Dir     string
	redis   *proc
	redisAt string
	nodes   []*proc
	Addrs   []string // the nodes' public addresses
	admins  []string
	haproxy *proc
	Front   string // haproxy's address, or "" without it
}

// StartCluster starts redis-server (append-only file, fsync always: a
// restart keeps every acknowledged write), n gateway nodes of the binary
// gw, and haproxy in front when withHAProxy.
func StartCluster(dir, gw string, n int, withHAProxy bool, nodeFlags ...string) (*Cluster, error) {
	c := &Cluster{Dir: dir}
	rp, err := freePort()
	if err != nil {
		return nil, err
	}
	c.redisAt = "127.0.0.1:" + strconv.Itoa(rp)
	c.redis = &proc{name: "redis", log: filepath.Join(dir, "redis.log"), args: []string{"redis-server",
		"--port", strconv.Itoa(rp), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
		"--appendfsync", "always", "--dir", dir, "--protected-mode", "no"}}
	if err := c.redis.start(); err != nil {
		return nil, err
	}
	if err := waitFor("redis", 10*time.Second, func() bool { return redisPing(c.redisAt) }); err != nil {
		c.Stop()
		return nil, err
	}
	for i := 0; i < n; i++ {
		p1, err1 := freePort()
		p2, err2 := freePort()
		if err1 != nil || err2 != nil {
			c.Stop()
			return nil, fmt.Errorf("ports: %v %v", err1, err2)
		}
		addr, admin := "127.0.0.1:"+strconv.Itoa(p1), "127.0.0.1:"+strconv.Itoa(p2)
		args := append([]string{gw, "--addr", addr, "--admin-addr", admin, "--node-id", fmt.Sprint("node-", i),
			"--redis-url", "redis://" + c.redisAt + "/0", "--rate", "1000", "--burst", "1000",
			"--presence-refresh", "1s", "--drain-timeout", "1s"}, nodeFlags...)
		p := &proc{name: fmt.Sprint("node-", i), log: filepath.Join(dir, fmt.Sprintf("node-%d.log", i)), args: args}
		c.nodes, c.Addrs, c.admins = append(c.nodes, p), append(c.Addrs, addr), append(c.admins, admin)
		if err := p.start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	for i := range c.nodes {
		if err := c.waitNode(i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if withHAProxy {
		if err := c.startHAProxy(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) waitNode(i int) error {
	return waitFor(c.nodes[i].name+" ready", 15*time.Second, func() bool { return httpOK("http://" + c.admins[i] + "/readyz") })
}

func (c *Cluster) startHAProxy() error {
	fp, err := freePort()
	if err != nil {
		return err
	}
	c.Front = "127.0.0.1:" + strconv.Itoa(fp)
	var b strings.Builder
	fmt.Fprintf(&b, "global\n    maxconn 9000\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n"+
		"    timeout server 60s\n    timeout tunnel 1h\nfrontend chat\n    bind %s\n    default_backend gateways\n"+
		"backend gateways\n    balance leastconn\n    retries 3\n    option redispatch\n    option httpchk GET /readyz\n    http-check expect status 200\n"+
		"    default-server inter 500ms fall 1 rise 2\n", c.Front)
	for i, a := range c.Addrs {
		_, ap, _ := net.SplitHostPort(c.admins[i])
		fmt.Fprintf(&b, "    server node-%d %s check port %s\n", i, a, ap)
	}
	cfg := filepath.Join(c.Dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return err
	}
	c.haproxy = &proc{name: "haproxy", log: filepath.Join(c.Dir, "haproxy.log"), args: []string{"haproxy", "-f", cfg, "-db"}}
	if err := c.haproxy.start(); err != nil {
		return err
	}
	return waitFor("haproxy", 10*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", c.Front, 200*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
}

// KillNode sends SIGKILL to node i.
func (c *Cluster) KillNode(i int) { c.nodes[i].kill() }

// StartNode starts node i again on its addresses and waits until ready.
func (c *Cluster) StartNode(i int) error {
	if err := c.nodes[i].start(); err != nil {
		return err
	}
	return c.waitNode(i)
}

// RestartRedis kills redis-server, waits until every running node has
// noticed (/readyz answers 503, as README "When a part fails" says), starts
// it again on the same port and append-only file, and waits until every
// node is ready again. Waiting for the nodes makes the outage one they
// see: restarted within a few hundred milliseconds, Redis is back before a
// node's health check has failed (go-redis retries hide it), and the run
// would prove nothing about an outage.
func (c *Cluster) RestartRedis() error {
	c.redis.kill()
	if err := waitFor("nodes not ready while Redis is down", 10*time.Second, func() bool {
		for i, p := range c.nodes {
			if !p.down && httpOK("http://"+c.admins[i]+"/readyz") {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	if err := c.redis.start(); err != nil {
		return err
	}
	// A restarted Redis replays its append-only file first, answering
	// LOADING meanwhile: seconds for a run's traffic, more on a loaded
	// machine (10 s was once too short in CI, with other suites running).
	if err := waitFor("redis", 30*time.Second, func() bool { return redisPing(c.redisAt) }); err != nil {
		return err
	}
	for i, p := range c.nodes {
		if p.down {
			continue // killed by the run, not started again
		}
		if err := c.waitNode(i); err != nil {
			return err
		}
	}
	return nil
}

// Stop kills everything the cluster started.
func (c *Cluster) Stop() {
	if c.haproxy != nil {
		c.haproxy.kill()
	}
	for _, p := range c.nodes {
		p.kill()
	}
	if c.redis != nil {
		c.redis.kill()
	}
}
