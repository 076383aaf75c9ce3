package attack

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/internal/gatewaytest"
)

// long turns on the long variants: volumes large enough to show a slow
// leak, too slow for every run.
var long = flag.Bool("attack.long", false, "run the long attack variants (bigger volumes, minutes)")

// pick returns short, or lng under -attack.long.
func pick[T any](short, lng T) T {
	if *long {
		return lng
	}
	return short
}

// TestMain stops the gateway FuzzRawStream shares across its inputs: it
// outlives every single test.
func TestMain(m *testing.M) {
	code := m.Run()
	stopShared()
	os.Exit(code)
}

const (
	kB = 1 << 10
	mB = 1 << 20
)

// logBuf collects a child's output; the pipe copier writes while tests read.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { return l.since(0) }

// Len is how much has been written: a mark for since.
func (l *logBuf) Len() int { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Len() }

// since returns what was written from offset off on.
func (l *logBuf) since(off int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b.Bytes()[off:])
}

// stackText returns the first line of log that shows a panic or a stack
// trace, or "". A recovered panic logged with its stack counts: it is a bug
// an attacker can trigger at will.
func stackText(log string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "panic") || strings.Contains(line, "goroutine ") || strings.Contains(line, ".go:") {
			if len(line) > 300 {
				line = line[:300] + "..." // a whole stack in one quoted line drowns the report
			}
			return line
		}
	}
	return ""
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// proc is a gateway child process.
type proc struct {
	cmd         *exec.Cmd
	Addr, Admin string // public and admin host:port
	log         *logBuf
	done        chan struct{} // closed once the process has exited
}

// freeAddr returns a loopback address nobody listens on (right now).
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// spawn starts bin with args, its output to the given writers. GATEWAY_*
// variables are left out (the gateway reads them as flags), and the child
// is killed if this process dies, so no run leaves one behind.
func spawn(bin string, args []string, stdout, stderr io.Writer) (*exec.Cmd, chan struct{}, error) {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEWAY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return cmd, done, nil
}

// launch starts a gateway on free loopback ports with extra flags and waits
// until its /healthz answers. A port taken between freeAddr and the bind is
// retried; any other early exit is an error carrying the log.
func launch(bin string, extra []string) (*proc, error) {
	for attempt := 0; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		admin, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p := &proc{Addr: addr, Admin: admin, log: &logBuf{}}
		// History in memory unless a test asks for a --data-dir: attacks run
		// side by side, and a durable store is one process's.
		args := append([]string{"--addr", addr, "--admin-addr", admin, "--node-id", "attack", "--data-dir="}, extra...)
		if p.cmd, p.done, err = spawn(bin, args, p.log, p.log); err != nil {
			return nil, err
		}
		if err = p.waitHealthy(10 * time.Second); err == nil {
			return p, nil
		}
		p.kill()
		if attempt < 3 && strings.Contains(p.log.String(), "address already in use") {
			continue
		}
		return nil, fmt.Errorf("gateway %v: %v\nlog:\n%s", args, err, tail(p.log.String(), 20))
	}
}

func (p *proc) waitHealthy(d time.Duration) error {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if !p.alive() {
			return fmt.Errorf("exited before it was healthy (%v)", p.cmd.ProcessState)
		}
		if code, _, err := httpGet("http://" + p.Admin + "/healthz"); err == nil && code == 200 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/healthz not 200 within %v", d)
		}
	}
}

// startGateway builds cmd/gateway (once per test binary), starts it with
// extra flags and kills it at the end of t. Its log must then hold no panic
// or stack trace; on failure its tail is printed.
func startGateway(t testing.TB, extra ...string) *proc {
	t.Helper()
	p, err := launch(gatewaytest.Build(t, "../cmd/gateway", ""), extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.kill()
		if s := stackText(p.log.String()); s != "" {
			t.Errorf("gateway log shows a panic or stack trace: %q", s)
		}
		if t.Failed() {
			t.Logf("gateway log (tail):\n%s", tail(p.log.String(), 30))
		}
	})
	return p
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits (bounded) for the exit.
func (p *proc) kill() {
	if p.alive() {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// httpc never keeps connections alive: an idle keep-alive connection is a
// goroutine on the admin server, which would blur the goroutine count.
var httpc = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func httpGet(url string) (int, []byte, error) {
	resp, err := httpc.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16*mB))
	return resp.StatusCode, body, err
}

// assertHealthy checks the node survived: still running, /healthz 200, a
// fresh client gets its welcome, no panic in the log. Sockets an attack
// just closed may take the node a moment to release, hence the short retry.
func (p *proc) assertHealthy(t testing.TB) {
	t.Helper()
	if !p.alive() {
		t.Fatalf("gateway exited during the attack: %v", p.cmd.ProcessState)
	}
	if code, _, err := httpGet("http://" + p.Admin + "/healthz"); err != nil || code != 200 {
		t.Fatalf("/healthz after the attack: %d %v", code, err)
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := p.tryWelcome()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a fresh client cannot use the node after the attack: %v", err)
		}
	}
	if s := stackText(p.log.String()); s != "" {
		t.Fatalf("gateway log shows a panic or stack trace: %q", s)
	}
}

// tryWelcome connects a normal client (gorilla), expects a welcome text
// frame first, and closes with 1000 so the node logs nothing about it.
func (p *proc) tryWelcome() error {
	d := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	c, resp, err := d.Dial("ws://"+p.Addr+"/ws?user=x", nil)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%v (HTTP %s)", err, resp.Status)
		}
		return fmt.Errorf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	mt, msg, err := c.ReadMessage()
	if err != nil || mt != websocket.TextMessage || !bytes.Contains(msg, []byte(`"type":"welcome"`)) {
		return fmt.Errorf("first frame is not a welcome: %q %v", msg, err)
	}
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return nil // the close reply, or the socket's end
		}
	}
}

// metric scrapes /metrics and returns the sum of the samples of name (all
// label sets); ok is false when the node does not export it.
func (p *proc) metric(name string) (v float64, ok bool, err error) {
	code, body, err := httpGet("http://" + p.Admin + "/metrics")
	if err == nil && code != 200 {
		err = fmt.Errorf("/metrics: HTTP %d", code)
	}
	if err != nil {
		return 0, false, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		rest, found := strings.CutPrefix(line, name)
		if !found || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest)
		x, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, false, fmt.Errorf("metric line %q: %v", line, err)
		}
		v, ok = v+x, true
	}
	return v, ok, nil
}

// rss is the process's resident set (VmRSS) in bytes, or 0 once it is gone.
func (p *proc) rss() int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * kB
		}
	}
	return 0
}

// watchRSS samples the RSS every 20 ms until the returned func is called,
// which returns the peak: a bound must hold during an attack, not only
// after the garbage collector has run.
func (p *proc) watchRSS() (peak func() int64) {
	stop, out := make(chan struct{}), make(chan int64)
	go func() {
		hi := p.rss()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				out <- max(hi, p.rss())
				return
			case <-tick.C:
				hi = max(hi, p.rss())
			}
		}
	}()
	return func() int64 { close(stop); return <-out }
}
