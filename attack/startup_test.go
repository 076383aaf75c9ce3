package attack

import (
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatgw/gateway/internal/gatewaytest"
)

// startupBound is how long a failing start may take: the failure comes in
// milliseconds, and before the fix the process never exited, so the bound
// only has to tell a hang from a loaded CI machine (1 s was once too
// short there, with nothing printed yet).
const startupBound = 5 * time.Second

// TestStartupFailsLoudly: a node that cannot serve must say so at once, on
// one line naming the flag to fix, and exit non-zero; a supervisor that
// sees it hang, or exit 0, or print a wall of nbio errors, restarts it into
// the same failure. Not parallel: its bounds are about the gateway, not
// about a machine busy with the other attacks.
func TestStartupFailsLoudly(t *testing.T) {
	bin := gatewaytest.Build(t, "../cmd/gateway", "")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()

	for _, tc := range []struct {
		name  string
		args  []string
		flags []string // the line must name one of these
	}{
		{"addr in use", []string{"--addr", busy}, []string{"--addr"}},
		{"addr port only", []string{"--addr=8080"}, []string{"--addr"}},
		{"addr host only", []string{"--addr=127.0.0.1"}, []string{"--addr"}},
		{"addr nonsense", []string{"--addr=nonsense"}, []string{"--addr"}},
		{"admin-addr in use", []string{"--admin-addr", busy}, []string{"--admin-addr"}},
		{"admin-addr malformed", []string{"--admin-addr=nonsense"}, []string{"--admin-addr"}},
		{"tls files missing", []string{"--tls-cert", "/nonexistent", "--tls-key", "/nonexistent"}, []string{"--tls-cert", "--tls-key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, err := freeAddr()
			if err != nil {
				t.Fatal(err)
			}
			admin, err := freeAddr()
			if err != nil {
				t.Fatal(err)
			}
			// The case's own flags come last and win.
			args := append([]string{"--addr", addr, "--admin-addr", admin, "--node-id", "attack", "--data-dir="}, tc.args...)
			var stdout, stderr logBuf
			cmd, done, err := spawn(bin, args, &stdout, &stderr)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(startupBound):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("gateway %v still running after %v; want a non-zero exit\nstderr:\n%s", tc.args, startupBound, tail(stderr.String(), 10))
			}
			if cmd.ProcessState.ExitCode() == 0 {
				t.Errorf("gateway %v exited 0; want non-zero", tc.args)
			}
			out := strings.TrimRight(stderr.String(), "\n")
			lines := strings.Split(out, "\n")
			if out == "" || len(lines) != 1 {
				t.Fatalf("gateway %v printed %d lines on stderr; want exactly one:\n%s", tc.args, len(lines), out)
			}
			named := false
			for _, f := range tc.flags {
				named = named || strings.Contains(lines[0], f)
			}
			if !named {
				t.Errorf("gateway %v: %q names none of %v", tc.args, lines[0], tc.flags)
			}
			if s := stackText(out); s != "" {
				t.Errorf("stack trace on a startup error: %q", s)
			}
		})
	}

	// A SIGTERM that lands while the node is still starting (signal
	// handlers not yet installed, listeners half bound) must still end it.
	for _, delay := range []time.Duration{0, 2 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond} {
		t.Run("SIGTERM after "+delay.String(), func(t *testing.T) {
			addr, _ := freeAddr()
			admin, _ := freeAddr()
			var out logBuf
			cmd, done, err := spawn(bin, []string{"--addr", addr, "--admin-addr", admin, "--data-dir="}, &out, &out)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(delay)
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("still running 2s after a SIGTERM sent %v after start\nlog:\n%s", delay, tail(out.String(), 10))
			}
			if s := stackText(out.String()); s != "" {
				t.Errorf("stack trace after an early SIGTERM: %q", s)
			}
		})
	}
}
