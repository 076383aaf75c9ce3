package redistest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterSlotCount is the number of hash slots of every Redis Cluster.
const clusterSlotCount = 16384

// clusterWait bounds every wait of the cluster harness: a cluster that has
// not settled by then never will, and the test fails naming what did not
// happen.
const clusterWait = 20 * time.Second

// RedisCluster is a Redis Cluster of redis-server processes on loopback
// ports, stopped at the end of the test that started it. The harness
// keeps its own record of the topology (who owns which slot, who
// replicates whom), changes it only through MigrateSlot and Failover, and
// after each change waits until every node's view matches it. Its methods
// are for the test's goroutine (they fail the test with t.Fatal).
type RedisCluster struct {
	t     testing.TB
	nodes []*clusterNode // in start order: the first masters, then their replicas

	ids      map[string]string   // address: node ID
	masters  []string            // the masters, in start order; Failover puts the promoted replica in its master's place
	replicas map[string][]string // master: its replicas
	owner    [clusterSlotCount]string
}

// clusterNode is one redis-server process of a cluster.
type clusterNode struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has ended
}

// Cluster runs a Redis Cluster of three masters (no replicas), stopped at
// the end of t, and returns their addresses.
func Cluster(t testing.TB) []string {
	t.Helper()
	return StartCluster(t, 3, 0).Addrs()
}

// StartCluster runs a Redis Cluster of masters masters, each with
// replicasPerMaster replicas, stopped at the end of t. The 16384 slots are
// split into equal ranges, in order, among the masters. It returns once
// every node says cluster_state:ok, every node's CLUSTER SLOTS shows that
// layout (all slots covered, every replica under its master) and every
// replica's link to its master is up.
//
// The cluster is built by hand rather than with redis-cli --cluster
// create, which refuses fewer than three masters: ADDSLOTSRANGE on each
// master, MEET, then REPLICATE on each replica.
func StartCluster(t testing.TB, masters, replicasPerMaster int) *RedisCluster {
	t.Helper()
	if masters < 1 || replicasPerMaster < 0 {
		t.Fatalf("redistest: a cluster of %d masters with %d replicas each", masters, replicasPerMaster)
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (scripts/test.sh installs it with apt-get)")
	}
	c := &RedisCluster{t: t, ids: map[string]string{}, replicas: map[string][]string{}}
	used := map[int]bool{} // ports taken by this cluster's nodes, client and bus
	for range masters * (1 + replicasPerMaster) {
		c.nodes = append(c.nodes, startClusterNode(t, used))
	}
	addrs := c.Addrs()
	c.masters = slices.Clone(addrs[:masters])
	for _, a := range addrs {
		c.ids[a] = c.str(t, a, "CLUSTER", "MYID")
	}

	// Distinct config epochs before the nodes meet, as redis-cli does:
	// masters that all start at epoch 0 would otherwise settle their
	// collision one bump at a time.
	for i, a := range addrs {
		c.must(t, a, "CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1))
	}
	for i, m := range c.masters {
		lo, hi := i*clusterSlotCount/masters, (i+1)*clusterSlotCount/masters-1
		c.must(t, m, "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi))
		for s := lo; s <= hi; s++ {
			c.owner[s] = m
		}
	}
	// Every pair meets, rather than each node meeting the first and
	// gossip doing the rest, which takes a second or two more.
	for i, a := range addrs {
		for _, b := range addrs[:i] {
			host, port, _ := net.SplitHostPort(b)
			c.must(t, a, "CLUSTER", "MEET", host, port)
		}
	}
	waitUntil(t, "every node knowing every other", func() string {
		for _, a := range addrs {
			nodes, err := redisDo(a, "CLUSTER", "NODES")
			if err != nil {
				return fmt.Sprintf("CLUSTER NODES on %s: %v", a, err)
			}
			text, _ := nodes.(string)
			for _, b := range addrs {
				if !strings.Contains(text, c.ids[b]) {
					return fmt.Sprintf("%s does not know %s yet", a, b)
				}
			}
		}
		return ""
	})
	// A replica can only REPLICATE a master it knows, hence after the
	// meeting.
	for i, m := range c.masters {
		for j := range replicasPerMaster {
			r := addrs[masters+i*replicasPerMaster+j]
			c.must(t, r, "CLUSTER", "REPLICATE", c.ids[m])
			c.replicas[m] = append(c.replicas[m], r)
		}
	}
	// CLUSTER SLOTS lists a replica only once its replication offset is
	// not 0, and on a master with no writes it stays 0 until the master's
	// first PING down the link (repl-ping-replica-period, 10 s). FLUSHALL
	// of the empty masters is a write that goes down the link at once.
	waitUntil(t, "every replica's link to its master coming up", c.linkDown)
	for m := range c.replicas {
		c.must(t, m, "FLUSHALL")
	}
	c.settle(t, fmt.Sprintf("a cluster of %d masters with %d replicas each coming up", masters, replicasPerMaster))
	return c
}

// startClusterNode runs one cluster-enabled redis-server, stopped at the
// end of t. A port chosen free may be taken before the server binds it
// (another test suite may be running), so a server that exits at once is
// tried again on other ports.
func startClusterNode(t testing.TB, used map[int]bool) *clusterNode {
	t.Helper()
	var failures []string
	for range 20 {
		port := clusterPort(t)
		// Not a port of this cluster, nor one whose bus port is one: the
		// kernel may hand out a port again once its probe listener closed.
		if used[port] || used[port+10000] {
			continue
		}
		used[port], used[port+10000] = true, true
		n, err := launchClusterNode(t.TempDir(), port)
		if err == nil {
			t.Cleanup(n.kill)
			return n
		}
		if failures = append(failures, err.Error()); len(failures) == 3 {
			break
		}
	}
	t.Fatalf("redistest: no cluster node would start: %s", strings.Join(failures, "; "))
	return nil
}

func launchClusterNode(dir string, port int) (*clusterNode, error) {
	log := filepath.Join(dir, "redis.log")
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--dir", dir,
		// A node is marked failing after this long without an answer: long
		// enough for a loaded test machine, short enough that the failover
		// election's timeout (twice this) stays well within clusterWait.
		"--cluster-node-timeout", "5000",
		// The harness is the only one to change the topology: no replica
		// moves to an orphaned master, no master left without slots turns
		// into a replica.
		"--cluster-allow-replica-migration", "no",
		// A node learns its own IP only from a peer's packet, so a lone
		// master would say "" for itself in CLUSTER SLOTS forever.
		"--cluster-announce-ip", "127.0.0.1",
		// A replica's first sync is diskless, and by default the master
		// waits 5 s for more replicas to share it.
		"--repl-diskless-sync-delay", "0",
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--loglevel", "warning", "--logfile", log)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &clusterNode{addr: "127.0.0.1:" + strconv.Itoa(port), cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(n.exited) }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case <-n.exited:
			text, _ := os.ReadFile(log)
			return nil, fmt.Errorf("cluster node on %s exited: %s", n.addr, strings.TrimSpace(string(text)))
		default:
		}
		if ping(n.addr) {
			return n, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.kill()
	return nil, fmt.Errorf("cluster node on %s did not answer PING in 10 s", n.addr)
}

func (n *clusterNode) kill() {
	_ = n.cmd.Process.Kill()
	<-n.exited
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

// Addrs is the host:port of every node, masters as started first, then
// the replicas; the order does not change with Failover.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr
	}
	return addrs
}

// MasterAddrs is the host:port of every master, in start order; after a
// Failover the promoted replica stands in its old master's place.
func (c *RedisCluster) MasterAddrs() []string { return slices.Clone(c.masters) }

// URL is the go-redis cluster URL with the masters as seeds
// (redis://<first>?addr=<second>&addr=...), as redis.ParseClusterURL
// reads it.
func (c *RedisCluster) URL() string {
	u := "redis://" + c.masters[0]
	for i, m := range c.masters[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + m
	}
	return u
}

// SlotOf is the hash slot of key, {hash tag} included, as the server
// computes it (CLUSTER KEYSLOT).
func (c *RedisCluster) SlotOf(key string) int {
	c.t.Helper()
	return int(c.integer(c.t, c.masters[0], "CLUSTER", "KEYSLOT", key))
}

// MasterOf is the address of the master that owns slot, as the first
// master that answers sees it (CLUSTER SLOTS).
func (c *RedisCluster) MasterOf(slot int) string {
	c.t.Helper()
	checkSlot(c.t, slot)
	var errs []string
	for _, m := range c.masters {
		v, err := readSlots(m)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if v.owner[slot] == "" {
			c.t.Fatalf("redistest: %s sees no owner for slot %d", m, slot)
		}
		return v.owner[slot]
	}
	c.t.Fatalf("redistest: no master answered CLUSTER SLOTS: %s", strings.Join(errs, "; "))
	return ""
}

// MigrateSlot moves slot, with all its keys, from its owner to the master
// to, the way redis-cli resharding does (IMPORTING on the target,
// MIGRATING on the source, MIGRATE the keys 100 at a time, then SETSLOT
// NODE on every master), and waits until every node sees to as its owner.
// From then on the old owner answers MOVED for the slot's keys.
func (c *RedisCluster) MigrateSlot(t testing.TB, slot int, to string) {
	t.Helper()
	checkSlot(t, slot)
	if !slices.Contains(c.masters, to) {
		t.Fatalf("redistest: MigrateSlot to %s, which is not a master (masters: %v)", to, c.masters)
	}
	from := c.owner[slot]
	if from == to {
		return
	}
	s := strconv.Itoa(slot)
	c.must(t, to, "CLUSTER", "SETSLOT", s, "IMPORTING", c.ids[from])
	c.must(t, from, "CLUSTER", "SETSLOT", s, "MIGRATING", c.ids[to])
	host, port, _ := net.SplitHostPort(to)
	for {
		keys, _ := c.must(t, from, "CLUSTER", "GETKEYSINSLOT", s, "100").([]any)
		if len(keys) == 0 {
			break
		}
		args := []string{"MIGRATE", host, port, "", "0", "5000", "KEYS"}
		for _, k := range keys {
			args = append(args, k.(string))
		}
		c.must(t, from, args...)
	}
	// The target first, so that the slot never has no owner that accepts
	// its keys; then the source, which from then on redirects; then the
	// others, which would learn it by gossip anyway.
	c.must(t, to, "CLUSTER", "SETSLOT", s, "NODE", c.ids[to])
	c.must(t, from, "CLUSTER", "SETSLOT", s, "NODE", c.ids[to])
	for _, m := range c.masters {
		if m != to && m != from {
			c.must(t, m, "CLUSTER", "SETSLOT", s, "NODE", c.ids[to])
		}
	}
	c.owner[slot] = to
	c.settle(t, fmt.Sprintf("every node seeing slot %d moved from %s to %s", slot, from, to))
}

// Failover has a replica of master take its place with CLUSTER FAILOVER,
// the coordinated kind: the master stops taking writes until the replica
// has all of them, so no acknowledged write is lost. It waits until every
// node sees the replica owning the master's slots, with the old master
// (and any other replica) replicating it with the link up, and returns
// the new master's address.
func (c *RedisCluster) Failover(t testing.TB, master string) string {
	t.Helper()
	reps := c.replicas[master]
	if len(reps) == 0 {
		t.Fatalf("redistest: Failover of %s, which is not a master with a replica (masters: %v, replicas: %v)",
			master, c.masters, c.replicas)
	}
	promoted := reps[0]
	c.must(t, promoted, "CLUSTER", "FAILOVER")
	c.masters[slices.Index(c.masters, master)] = promoted
	delete(c.replicas, master)
	c.replicas[promoted] = append(slices.Clone(reps[1:]), master)
	for s := range c.owner {
		if c.owner[s] == master {
			c.owner[s] = promoted
		}
	}
	c.settle(t, fmt.Sprintf("replica %s taking over from master %s", promoted, master))
	return promoted
}

// Kill ends master with SIGKILL, as a crash would, and waits until the
// cluster's own failover has promoted one of its replicas (after
// cluster-node-timeout, about 5 s) and every remaining node agrees; it
// returns the new master's address. Unlike Failover, writes the dead
// master acknowledged and had not yet replicated may be lost.
func (c *RedisCluster) Kill(t testing.TB, master string) string {
	t.Helper()
	reps := c.replicas[master]
	if len(reps) == 0 {
		t.Fatalf("redistest: Kill of %s, which is not a master with a replica (masters: %v, replicas: %v)",
			master, c.masters, c.replicas)
	}
	i := slices.IndexFunc(c.nodes, func(n *clusterNode) bool { return n.addr == master })
	c.nodes[i].kill()
	c.nodes = slices.Delete(c.nodes, i, i+1)
	promoted := ""
	waitUntil(t, fmt.Sprintf("a replica of the killed master %s promoted", master), func() string {
		for _, r := range reps {
			if v, err := redisDo(r, "INFO", "replication"); err == nil {
				if text, _ := v.(string); parseInfo(text)["role"] == "master" {
					promoted = r
					return ""
				}
			}
		}
		return "no replica is a master yet"
	})
	c.masters[slices.Index(c.masters, master)] = promoted
	delete(c.replicas, master)
	if rest := slices.DeleteFunc(slices.Clone(reps), func(r string) bool { return r == promoted }); len(rest) > 0 {
		c.replicas[promoted] = rest
	}
	for s := range c.owner {
		if c.owner[s] == master {
			c.owner[s] = promoted
		}
	}
	c.settle(t, fmt.Sprintf("replica %s taking over from the killed master %s", promoted, master))
	return promoted
}

// Info is INFO section on the node at addr ("" for the default
// sections), as key/value pairs: pubsub_channels, role,
// master_link_status, total_net_output_bytes, ...
func (c *RedisCluster) Info(t testing.TB, addr, section string) map[string]string {
	t.Helper()
	args := []string{"INFO"}
	if section != "" {
		args = append(args, section)
	}
	return parseInfo(c.str(t, addr, args...))
}

// ClusterInfo is CLUSTER INFO on the node at addr, as key/value pairs:
// cluster_state, cluster_stats_messages_publish_sent, ...
func (c *RedisCluster) ClusterInfo(t testing.TB, addr string) map[string]string {
	t.Helper()
	return parseInfo(c.str(t, addr, "CLUSTER", "INFO"))
}

// settle waits until the cluster is as the harness's record says, in
// every node's view; what names the change awaited, for the failure.
func (c *RedisCluster) settle(t testing.TB, what string) {
	t.Helper()
	waitUntil(t, what, c.disagreement)
}

// disagreement is the first way in which the cluster is not yet as the
// record says, or "".
func (c *RedisCluster) disagreement() string {
	for _, a := range c.Addrs() {
		v, err := redisDo(a, "CLUSTER", "INFO")
		if err != nil {
			return fmt.Sprintf("CLUSTER INFO on %s: %v", a, err)
		}
		text, _ := v.(string)
		if state := parseInfo(text)["cluster_state"]; state != "ok" {
			return fmt.Sprintf("%s says cluster_state:%s", a, state)
		}
		view, err := readSlots(a)
		if err != nil {
			return err.Error()
		}
		for s, o := range view.owner {
			if o != c.owner[s] {
				return fmt.Sprintf("%s sees slot %d owned by %q, not %s", a, s, o, c.owner[s])
			}
		}
		for _, m := range c.masters {
			got, want := slices.Sorted(slices.Values(view.replicas[m])), slices.Sorted(slices.Values(c.replicas[m]))
			if !slices.Equal(got, want) {
				return fmt.Sprintf("%s sees replicas %v under %s, not %v", a, got, m, want)
			}
		}
	}
	return c.linkDown()
}

// linkDown is the first replica not replicating its master with the
// link up, or "".
func (c *RedisCluster) linkDown() string {
	for m, reps := range c.replicas {
		_, port, _ := net.SplitHostPort(m)
		for _, r := range reps {
			v, err := redisDo(r, "INFO", "replication")
			if err != nil {
				return fmt.Sprintf("INFO replication on %s: %v", r, err)
			}
			text, _ := v.(string)
			info := parseInfo(text)
			if info["role"] != "slave" || info["master_port"] != port || info["master_link_status"] != "up" {
				return fmt.Sprintf("replica %s has role:%s master_port:%s master_link_status:%s, not a link up to %s",
					r, info["role"], info["master_port"], info["master_link_status"], m)
			}
		}
	}
	return ""
}

// slotsView is one node's CLUSTER SLOTS: each slot's master ("" when no
// node serves it) and each master's replicas, as host:port.
type slotsView struct {
	owner    [clusterSlotCount]string
	replicas map[string][]string
}

// readSlots asks addr for its CLUSTER SLOTS. Each entry is [first slot,
// last slot, master, replica...], a node being [ip, port, id, ...] (Redis
// 7 adds a map of hostname metadata, unused here).
func readSlots(addr string) (*slotsView, error) {
	reply, err := redisDo(addr, "CLUSTER", "SLOTS")
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS on %s: %v", addr, err)
	}
	bad := func(e any) error { return fmt.Errorf("CLUSTER SLOTS on %s: unexpected entry %v", addr, e) }
	entries, _ := reply.([]any)
	v := &slotsView{replicas: map[string][]string{}}
	for _, e := range entries {
		f, _ := e.([]any)
		if len(f) < 3 {
			return nil, bad(e)
		}
		lo, ok1 := f[0].(int64)
		hi, ok2 := f[1].(int64)
		if !ok1 || !ok2 || lo < 0 || hi >= clusterSlotCount || lo > hi {
			return nil, bad(e)
		}
		var nodes []string
		for _, n := range f[2:] {
			nf, _ := n.([]any)
			if len(nf) < 2 {
				return nil, bad(e)
			}
			ip, _ := nf[0].(string)
			port, ok := nf[1].(int64)
			if !ok {
				return nil, bad(e)
			}
			nodes = append(nodes, net.JoinHostPort(ip, strconv.FormatInt(port, 10)))
		}
		for s := lo; s <= hi; s++ {
			v.owner[s] = nodes[0]
		}
		v.replicas[nodes[0]] = nodes[1:]
	}
	return v, nil
}

// waitUntil calls problem until it returns "" and fails t if it has not
// by clusterWait, saying what never happened and what was still wrong.
func waitUntil(t testing.TB, what string, problem func() string) {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for {
		p := problem()
		if p == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: %s never happened within %v; still: %s", what, clusterWait, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func checkSlot(t testing.TB, slot int) {
	t.Helper()
	if slot < 0 || slot >= clusterSlotCount {
		t.Fatalf("redistest: slot %d is not in 0-%d", slot, clusterSlotCount-1)
	}
}

// must runs a command on addr and fails t on any error, the server's
// included.
func (c *RedisCluster) must(t testing.TB, addr string, args ...string) any {
	t.Helper()
	v, err := redisDo(addr, args...)
	if err != nil {
		t.Fatalf("redistest: %s on %s: %v", strings.Join(args, " "), addr, err)
	}
	return v
}

func (c *RedisCluster) str(t testing.TB, addr string, args ...string) string {
	t.Helper()
	s, ok := c.must(t, addr, args...).(string)
	if !ok {
		t.Fatalf("redistest: %s on %s: not a string reply", strings.Join(args, " "), addr)
	}
	return s
}

func (c *RedisCluster) integer(t testing.TB, addr string, args ...string) int64 {
	t.Helper()
	n, ok := c.must(t, addr, args...).(int64)
	if !ok {
		t.Fatalf("redistest: %s on %s: not an integer reply", strings.Join(args, " "), addr)
	}
	return n
}
