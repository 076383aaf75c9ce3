// Command chaos runs a chaos case against a cluster it starts: redis-server,
// three gateway nodes and (with --haproxy) haproxy in front; clients in rooms
// sending with idempotency keys; faults injected in order; a summary of what
// each fault did and whether every acknowledged message reached every member
// exactly once. scripts/chaos.sh runs the standard case.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/chatgw/gateway/chaos"
)

func main() {
	gw := flag.String("gateway", "bin/gateway", "the gateway binary")
	nodes := flag.Int("nodes", 3, "gateway nodes")
	clients := flag.Int("clients", 2000, "clients")
	rooms := flag.Int("rooms", 100, "rooms the clients are spread over")
	interval := flag.Duration("interval", time.Second, "between one client's messages")
	settle := flag.Duration("settle", 6*time.Second, "sending before the first fault and between faults")
	drain := flag.Duration("drain", 15*time.Second, "at most this long for unacknowledged messages at the end")
	faults := flag.String("faults", "kill-node,start-node,restart-redis,cut-client", "faults, in order")
	haproxy := flag.Bool("haproxy", true, "clients connect through haproxy (else straight to the nodes, moving to the next on failure)")
	out := flag.String("out", "", "directory for summary.txt and summary.json")
	flag.Parse()

	dir, err := os.MkdirTemp("", "chaos")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	c, err := chaos.StartCluster(dir, *gw, *nodes, *haproxy)
	if err != nil {
		fail(err)
	}
	defer c.Stop()
	rep, err := chaos.Execute(c, chaos.Config{Clients: *clients, Rooms: *rooms, Interval: *interval,
		Settle: *settle, Drain: *drain, Faults: strings.Split(*faults, ","), Log: os.Stderr})
	if err != nil {
		c.Stop()
		fail(err)
	}
	fmt.Print(rep.String())
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fail(err)
		}
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*out+"/summary.json", b, 0o644); err != nil {
			fail(err)
		}
		if err := os.WriteFile(*out+"/summary.txt", []byte(rep.String()), 0o644); err != nil {
			fail(err)
		}
	}
	if !rep.OK() {
		c.Stop()
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "chaos:", err)
	os.Exit(2)
}
