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
// room exactly once, every resume must return exactly what was missed
// (rep.OK, see check.go), and, as README "Failure behaviour" states: each
// client of the killed node comes back through another one and resumes
// with recovered true (at 20 messages a second a room, a reconnect misses
// far fewer than the 100 the history keeps), and restarting Redis drops
// no one while the sends it interrupts get unavailable. scripts/chaos.sh
// runs the full case.
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
	kill, redis := rep.Faults[0], rep.Faults[1]
	if kill.Disconnected == 0 || kill.Reconnected < kill.Disconnected {
		t.Fatalf("killing a node: %d clients dropped, %d back", kill.Disconnected, kill.Reconnected)
	}
	if kill.Recovered != kill.Reconnected || kill.NotRecovered != 0 {
		t.Fatalf("killing a node: of %d resumes %d recovered, %d not", kill.Reconnected, kill.Recovered, kill.NotRecovered)
	}
	if redis.Disconnected != 0 || redis.Reconnected != 0 {
		t.Fatalf("restarting Redis: %d clients dropped, %d reconnected; want none", redis.Disconnected, redis.Reconnected)
	}
	// Sends during the outage are answered unavailable and retried with
	// their keys; none means the run never went through an outage.
	if redis.Unavailable == 0 {
		t.Fatal("restarting Redis: no send was answered unavailable, so no outage was tested")
	}
}
