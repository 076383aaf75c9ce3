package chaos

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chatgw/gateway/internal/gatewaytest"
)

// TestChaosReduced is the default suite's chaos case: three gateway
// processes on a real redis-server, 300 clients in 15 rooms sending with
// idempotency keys; one node is killed with SIGKILL, then Redis is
// restarted. Every acknowledged message must reach every member of its
// room exactly once. scripts/chaos.sh runs the full case.
func TestChaosReduced(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (scripts/test.sh installs it)")
	}
	dir := t.TempDir()
	c, err := StartCluster(dir, gatewaytest.Build(t, "../cmd/gateway", ""), 3, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	rep, err := Execute(c, Config{Clients: 300, Rooms: 15, Interval: time.Second, Settle: 3 * time.Second,
		Drain: 10 * time.Second, Faults: []string{"kill-node", "restart-redis"}, Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if !rep.OK() {
		t.Fatalf("chaos run failed:\n%s", rep)
	}
	if f := rep.Faults[0]; f.Disconnected == 0 || f.Reconnected < f.Disconnected {
		t.Fatalf("killing a node: %d clients dropped, %d back", f.Disconnected, f.Reconnected)
	}
}
