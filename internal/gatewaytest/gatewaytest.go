// Package gatewaytest starts what tests run against: a gateway node in the
// test's process, on loopback ports of its own, or a binary built once per
// test process.
package gatewaytest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chatgw/gateway/gateway"
)

// Start runs a node on free loopback ports (public and admin), named
// "test-node", logging nowhere, with mutate applied to its configuration,
// and shuts it down at the end of t.
func Start(t testing.TB, mutate func(*gateway.Config)) (*gateway.Server, gateway.Config) {
	t.Helper()
	cfg := gateway.DefaultConfig()
	cfg.Addr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.NodeID = "test-node"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv, cfg
}

var (
	buildMu sync.Mutex
	built   = map[string]string{} // package dir and ldflags -> binary
)

// Build compiles the command in dir (relative to the test's directory)
// with ldflags, once per test process, and returns the binary's path.
func Build(t testing.TB, dir, ldflags string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := dir + "\x00" + ldflags
	if bin, ok := built[key]; ok {
		return bin
	}
	out, err := os.MkdirTemp("", "gatewaytest-bin")
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(out, filepath.Base(abs))
	args := []string{"build", "-o", bin}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	if msg, err := exec.Command("go", append(args, dir)...).CombinedOutput(); err != nil {
		t.Fatal(fmt.Errorf("go build %s: %v\n%s", dir, err, msg))
	}
	built[key] = bin
	return bin
}
