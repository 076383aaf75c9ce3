package redistest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// get is GET key on a connection of its own to addr.
func get(t *testing.T, addr, key string) (string, error) {
	t.Helper()
	v, err := redisDo(addr, "GET", key)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("GET %s on %s: %#v", key, addr, v)
	}
	return s, nil
}

// wantValue fails unless addr serves key with value want.
func wantValue(t *testing.T, addr, key, want string) {
	t.Helper()
	if got, err := get(t, addr, key); err != nil || got != want {
		t.Fatalf("GET %s on %s = %q, %v; want %q", key, addr, got, err, want)
	}
}

// wantMoved fails unless addr redirects key's slot to owner.
func wantMoved(t *testing.T, addr, key string, slot int, owner string) {
	t.Helper()
	_, err := get(t, addr, key)
	if want := fmt.Sprintf("MOVED %d %s", slot, owner); err == nil || err.Error() != want {
		t.Fatalf("GET %s on %s: %v; want %s", key, addr, err, want)
	}
}

// TestClusterMigrateSlotAndFailover: a slot's keys follow it to another
// master, whose replica then takes over with them.
func TestClusterMigrateSlotAndFailover(t *testing.T) {
	c := StartCluster(t, 3, 1)
	addrs, masters := c.Addrs(), c.MasterAddrs()
	if len(addrs) != 6 || !slices.Equal(masters, addrs[:3]) {
		t.Fatalf("Addrs %v, MasterAddrs %v", addrs, masters)
	}
	if want := "redis://" + masters[0] + "?addr=" + masters[1] + "&addr=" + masters[2]; c.URL() != want {
		t.Fatalf("URL %q, want %q", c.URL(), want)
	}
	// The examples of the Redis Cluster specification.
	if a, b, d := c.SlotOf("somekey"), c.SlotOf("foo{hash_tag}"), c.SlotOf("bar{hash_tag}"); a != 11058 || b != 2515 || d != 2515 {
		t.Fatalf("SlotOf: somekey %d, foo{hash_tag} %d, bar{hash_tag} %d", a, b, d)
	}

	slot := c.SlotOf("{room1}:k1")
	if s := c.SlotOf("{room1}:k2"); s != slot {
		t.Fatalf("{room1}:k1 in slot %d, {room1}:k2 in %d", slot, s)
	}
	from := c.MasterOf(slot)
	if want := masters[slot*3/clusterSlotCount]; from != want {
		t.Fatalf("slot %d on %s, want %s", slot, from, want)
	}
	// More keys than one GETKEYSINSLOT batch of MigrateSlot's.
	keys := []string{"{room1}:k1", "{room1}:k2"}
	for i := range 250 {
		keys = append(keys, "{room1}:n"+strconv.Itoa(i))
	}
	for _, k := range keys {
		if v, err := redisDo(from, "SET", k, "v-"+k); err != nil || v != "OK" {
			t.Fatalf("SET %s on %s: %v %v", k, from, v, err)
		}
	}

	to := masters[(slices.Index(masters, from)+1)%3]
	c.MigrateSlot(t, slot, to)
	if o := c.MasterOf(slot); o != to {
		t.Fatalf("after MigrateSlot slot %d is on %s, want %s", slot, o, to)
	}
	for _, k := range keys {
		wantValue(t, to, k, "v-"+k)
	}
	for addr, want := range map[string]int64{to: int64(len(keys)), from: 0} {
		if n, err := redisDo(addr, "CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(slot)); err != nil || n != want {
			t.Fatalf("COUNTKEYSINSLOT %d on %s: %v %v, want %d", slot, addr, n, err, want)
		}
	}
	wantMoved(t, from, "{room1}:k1", slot, to)
	wantMoved(t, from, "{room1}:k2", slot, to)

	promoted := c.Failover(t, to)
	if wantReplica := addrs[3+slices.Index(masters, to)]; promoted != wantReplica {
		t.Fatalf("Failover(%s) promoted %s, want its replica %s", to, promoted, wantReplica)
	}
	if m := c.MasterAddrs(); slices.Contains(m, to) || !slices.Contains(m, promoted) {
		t.Fatalf("after Failover MasterAddrs %v", m)
	}
	if o := c.MasterOf(slot); o != promoted {
		t.Fatalf("after Failover slot %d is on %s, want %s", slot, o, promoted)
	}
	for _, k := range keys {
		wantValue(t, promoted, k, "v-"+k)
	}
	wantMoved(t, to, "{room1}:k1", slot, promoted) // a replica redirects too, without READONLY
	if r := c.Info(t, to, "replication"); r["role"] != "slave" || r["master_link_status"] != "up" {
		t.Fatalf("old master's INFO replication: %v", r)
	}
	if r := c.Info(t, promoted, "replication"); r["role"] != "master" || r["connected_slaves"] != "1" {
		t.Fatalf("promoted replica's INFO replication: %v", r)
	}
	if ci := c.ClusterInfo(t, from); ci["cluster_state"] != "ok" || ci["cluster_slots_assigned"] != "16384" ||
		ci["cluster_known_nodes"] != "6" || ci["cluster_size"] != "3" {
		t.Fatalf("CLUSTER INFO on %s: %v", from, ci)
	}
	if _, ok := c.Info(t, from, "")["total_net_output_bytes"]; !ok {
		t.Fatal("INFO without a section has no total_net_output_bytes")
	}

	// go-redis finds its way from the URL's seeds.
	opts, err := redis.ParseClusterURL(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClusterClient(opts)
	defer rc.Close()
	for _, k := range []string{"{room1}:k1", "{room1}:n249"} {
		if v, err := rc.Get(context.Background(), k).Result(); err != nil || v != "v-"+k {
			t.Fatalf("go-redis GET %s: %q %v", k, v, err)
		}
	}
}

// TestClusterOneMaster: a cluster of one master, which redis-cli would
// not create, has every slot.
func TestClusterOneMaster(t *testing.T) {
	c := StartCluster(t, 1, 0)
	addr := c.Addrs()[0]
	if len(c.Addrs()) != 1 || c.URL() != "redis://"+addr {
		t.Fatalf("Addrs %v, URL %s", c.Addrs(), c.URL())
	}
	for _, s := range []int{0, 1, 8191, 16383} {
		if o := c.MasterOf(s); o != addr {
			t.Fatalf("slot %d on %q, want %s", s, o, addr)
		}
	}
	if ci := c.ClusterInfo(t, addr); ci["cluster_state"] != "ok" || ci["cluster_slots_ok"] != "16384" || ci["cluster_known_nodes"] != "1" {
		t.Fatalf("CLUSTER INFO: %v", ci)
	}
	for i := range 20 { // in many slots
		k := "key" + strconv.Itoa(i)
		if v, err := redisDo(addr, "SET", k, k); err != nil || v != "OK" {
			t.Fatalf("SET %s: %v %v", k, v, err)
		}
		wantValue(t, addr, k, k)
	}
}

// TestClusterOneMasterFailover: with one master, the old master's is the
// only vote the replica can get, and it gives it.
func TestClusterOneMasterFailover(t *testing.T) {
	c := StartCluster(t, 1, 1)
	old := c.MasterAddrs()[0]
	if v, err := redisDo(old, "SET", "k", "v"); err != nil || v != "OK" {
		t.Fatalf("SET: %v %v", v, err)
	}
	promoted := c.Failover(t, old)
	if promoted != c.Addrs()[1] || c.MasterOf(0) != promoted || c.MasterOf(16383) != promoted {
		t.Fatalf("promoted %s; Addrs %v; slot 0 on %s", promoted, c.Addrs(), c.MasterOf(0))
	}
	wantValue(t, promoted, "k", "v")
	slot := c.SlotOf("k")
	wantMoved(t, old, "k", slot, promoted)
}

// TestClusterThreeMasters: Cluster, as the gateway's tests use it.
func TestClusterThreeMasters(t *testing.T) {
	addrs := Cluster(t)
	if len(addrs) != 3 {
		t.Fatalf("Cluster: %v", addrs)
	}
	for _, a := range addrs {
		out, err := redisDo(a, "CLUSTER", "INFO")
		if text, _ := out.(string); err != nil || !strings.Contains(text, "cluster_state:ok") {
			t.Fatalf("CLUSTER INFO on %s: %v %v", a, out, err)
		}
	}
}

// TestClusterKillMaster: a master killed outright is replaced by its
// replica through the cluster's own failover, with the keys it had
// replicated.
func TestClusterKillMaster(t *testing.T) {
	c := StartCluster(t, 3, 1)
	slot := c.SlotOf("{room1}")
	master := c.MasterOf(slot)
	if v, err := redisDo(master, "SET", "{room1}:k", "v"); err != nil || v != "OK" {
		t.Fatalf("SET: %v %v", v, err)
	}
	if _, err := redisDo(master, "WAIT", "1", "2000"); err != nil {
		t.Fatal(err)
	}
	promoted := c.Kill(t, master)
	if promoted == master || c.MasterOf(slot) != promoted {
		t.Fatalf("slot %d is on %s after killing %s, want the promoted %s", slot, c.MasterOf(slot), master, promoted)
	}
	if v, err := redisDo(promoted, "GET", "{room1}:k"); err != nil || v != "v" {
		t.Fatalf("GET at the promoted replica: %v %v", v, err)
	}
	if slices.Contains(c.Addrs(), master) {
		t.Fatalf("the killed master %s is still listed", master)
	}
}
