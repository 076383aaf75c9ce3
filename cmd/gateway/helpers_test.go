package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/internal/gatewaytest"
	"github.com/chatgw/gateway/internal/wstest"
)

// The helpers every test of the real binary shares: start a gateway
// process and wait for it to listen, dial it, read its frames, signal it and
// wait for its exit, read its admin endpoints.

// startTimeout bounds the wait for a process's listening line: a process
// that never logs it (a changed log line, a hang before listening) fails
// its test instead of hanging the package until go test's own timeout.
const startTimeout = 20 * time.Second

// buildGateway builds this command once, with a version and commit that
// TestVersionCommand checks.
func buildGateway(t *testing.T) string {
	return gatewaytest.Build(t, ".", "-X main.version=v9.9.9-test -X main.commit=abc1234")
}

// listenLine is the text form of the start line, from which a test learns
// the ports the process bound (it is started on port 0).
var listenLine = regexp.MustCompile(`ws=ws://(\S+)/ws (?:page=\S+ )?admin=(\S+)`)

// listenAddrs returns the public and admin addresses of a "gateway
// listening" line, in the text or the JSON log format.
func listenAddrs(line string) (addr, admin string, ok bool) {
	if strings.HasPrefix(line, "{") {
		var l struct{ Msg, WS, Admin string }
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "gateway listening" {
			return "", "", false
		}
		return strings.TrimSuffix(strings.TrimPrefix(l.WS, "ws://"), "/ws"), l.Admin, true
	}
	m := listenLine.FindStringSubmatch(line)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// gwProc is one gateway process a test started.
type gwProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string        // public host:port
	admin  string        // admin host:port
	listen string        // the "gateway listening" log line
	exited chan struct{} // closed once the process has ended; err is then Wait's result
	err    error

	mu     sync.Mutex
	stderr bytes.Buffer // everything the process logged so far
}

// gatewayCmd is the binary with args, in this process's environment
// without any GATEWAY_* variable (a developer's own settings must not
// change a test) plus env.
func gatewayCmd(t *testing.T, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(buildGateway(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEWAY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// startGateway runs the binary (gatewayCmd) on free loopback ports with
// args (later flags win over the --addr and --admin-addr given first) and
// waits for its listening line. The process is killed at the end of the
// test if still running; its log is shown when the test failed.
func startGateway(t *testing.T, env []string, args ...string) *gwProc {
	t.Helper()
	first := []string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}
	if !strings.Contains(strings.Join(append(args, env...), " "), "redis") {
		// The default durable store, in a directory of the test's own (a
		// cluster node keeps its history in Redis and takes none).
		first = append(first, "--data-dir", t.TempDir())
	}
	args = append(first, args...)
	p := &gwProc{t: t, cmd: gatewayCmd(t, env, args...), exited: make(chan struct{})}
	pipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() || strings.Contains(p.log(), "panic") {
			t.Logf("gateway %v logged:\n%s", args, p.log())
		}
	})
	listening := make(chan string, 1)
	go func() {
		// Reads to the end, then reaps: Wait must follow the last read.
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if _, _, ok := listenAddrs(sc.Text()); ok {
				select {
				case listening <- sc.Text():
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pipe)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case p.listen = <-listening:
		p.addr, p.admin, _ = listenAddrs(p.listen)
	case <-p.exited:
		t.Fatalf("gateway %v exited before listening: %v\n%s", args, p.err, p.log())
	case <-time.After(startTimeout):
		t.Fatalf("gateway %v did not log its listening line within %v:\n%s", args, startTimeout, p.log())
	}
	return p
}

// log is what the process has written to stderr so far.
func (p *gwProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *gwProc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// running reports whether the process has not ended yet.
func (p *gwProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// waitExit waits up to d for the process to end and returns Wait's result.
func (p *gwProc) waitExit(d time.Duration) error {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		p.t.Fatalf("gateway still running %v later", d)
		return nil
	}
}

// wsURL is the WebSocket URL of the process with a query.
func (p *gwProc) wsURL(query string) string { return "ws://" + p.addr + "/ws?" + query }

// upgrade dials url and returns the HTTP status of a refused upgrade, or
// 101 and the connection (closed at the end of the test).
func upgrade(t *testing.T, url string, h http.Header) (int, *websocket.Conn) {
	t.Helper()
	return wstest.Upgrade(t, url, wstest.Header(h))
}

type wsFrame = wstest.Frame

// dialNode connects to a node as user (anonymous mode) or fails the test.
// The client does not consume the welcome.
func dialNode(t *testing.T, addr, user string) *wstest.Client {
	t.Helper()
	return wstest.Dial(t, fmt.Sprintf("ws://%s/ws?user=%s", addr, user))
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	code, _ := httpGet(t, url)
	return code
}

// metric reads an unlabelled metric from the admin listener's /metrics.
func metric(t *testing.T, admin, name string) float64 {
	t.Helper()
	code, body := httpGet(t, "http://"+admin+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: HTTP %d", code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("/metrics: %q", line)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// writeFile writes text to a new file name in a temporary directory.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// poll checks cond every 20 ms until it holds, and fails the test with
// what after d.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}

// rawUpgrade opens a WebSocket connection over plain TCP and returns the
// socket right after the 101 head: the caller decides whether it ever
// reads or writes again (gorilla always answers a close frame).
func rawUpgrade(t *testing.T, addr, query string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	fmt.Fprintf(c, "GET /ws?%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", query, addr)
	// Byte by byte, so that no frame after the head is consumed here.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var head []byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		b := make([]byte, 1)
		if _, err := c.Read(b); err != nil {
			t.Fatalf("upgrade: %v after %q", err, head)
		}
		head = append(head, b[0])
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
		t.Fatalf("upgrade answered %q", head)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c
}

// closeCode returns the status code of the first close frame in data, a
// stream of unmasked server frames, or 0 when it holds none.
func closeCode(data []byte) int {
	for len(data) >= 2 {
		op, n, hdr := data[0]&0x0f, uint64(data[1]&0x7f), 2
		switch n {
		case 126:
			if len(data) < 4 {
				return 0
			}
			n, hdr = uint64(binary.BigEndian.Uint16(data[2:])), 4
		case 127:
			if len(data) < 10 {
				return 0
			}
			n, hdr = binary.BigEndian.Uint64(data[2:]), 10
		}
		if uint64(len(data)-hdr) < n {
			return 0
		}
		if op == 0x8 && n >= 2 {
			return int(binary.BigEndian.Uint16(data[hdr:]))
		}
		data = data[uint64(hdr)+n:]
	}
	return 0
}

// exitSignal is the signal that ended a process, or -1 if it exited.
func exitSignal(err error) syscall.Signal {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return -1
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal()
	}
	return -1
}

// isReset reports a connection reset by the peer: how a socket dropped with
// unread data or by an exiting process may end instead of with EOF.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
