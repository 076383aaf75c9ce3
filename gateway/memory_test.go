package gateway_test

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/maphash"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/internal/gatewaytest"
)

// BenchmarkIdleConnMemory: where the bytes of an idle connection go (issue
// 20). A node with the memory store (--data-dir "") takes n connections,
// each joined to its inbox and to one room "r<i%100>", then nothing
// happens. The node's Go heap is measured twice, before and after, with
// every allocation profiled (runtime.MemProfileRate = 1), and the heap
// profile's in-use bytes are grouped by owner (see ownerNames). It reports, per
// connection:
//
//	bytes/conn     the in-use heap the node added (profile delta, clients excluded)
//	heapinuse/conn runtime.MemStats.HeapInuse delta (spans, so size-class and
//	               fragmentation waste included; clients included)
//	slack-B/conn   heapinuse/conn less the live bytes of node and clients
//	stack/conn     StackInuse delta (0 when no goroutine is kept per connection)
//	<owner>-B/conn each owner's share of bytes/conn
//	kslab/conn ... the kernel side: /proc/meminfo Slab and SUnreclaim, and
//	               /proc/net/sockstat TCP mem, per connection (two sockets:
//	               both ends are on this host). Host-wide figures: noisy
//	               when anything else runs.
//
// The clients are raw sockets in this process: the handshake and the join
// are done by hand by a few workers and afterwards a client is a net.Conn
// and nothing else, no goroutine, no buffer. What they allocate is told
// apart by its stack and left out of bytes/conn (shown as client-B/conn).
// It measures once, whatever b.N:
//
//	go test -run XXX -bench BenchmarkIdleConnMemory -benchtime 1x ./gateway/
//
// With MEMBENCH_DETAIL=1 (and -v, or the log is cut at 10 lines) it logs
// the 40 largest allocation sites of the delta, to place what each owner
// holds, and the slab caches that grew most (/proc/slabinfo, when readable).
func BenchmarkIdleConnMemory(b *testing.B) {
	for _, n := range []int{2000, 6000} {
		b.Run(fmt.Sprint("n=", n), func(b *testing.B) { idleConnMemory(b, n) })
	}
}

const memRooms = 100 // shared rooms: connection i joins r<i%memRooms>

func idleConnMemory(b *testing.B, n int) {
	// Before the node starts, so that everything it allocates is sampled;
	// the runtime notices the change at each P's next allocation.
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()

	srv, _ := gatewaytest.Start(b, func(c *gateway.Config) {
		c.DataDir = ""
		// No ping may come while the clients, which never answer, sit idle.
		c.Heartbeat = time.Hour
		// All clients come from one address; only sockets before their
		// upgrade count, so the footprint of an open one is the same.
		c.MaxPendingPerIP = 0
	})
	addr := srv.Addr()
	// Warm up: pools, maps grown to their working size, the rooms. Then
	// the baseline is what n idle connections come on top of.
	warm := openIdle(b, addr, 200, "w")
	closeAll(warm)
	time.Sleep(300 * time.Millisecond)

	before := snapshot(false)
	conns := openIdle(b, addr, n, "u")
	defer closeAll(conns)
	// Presence frames from later joins sit in earlier clients' receive
	// queues: read them away so that the kernel holds idle sockets only.
	time.Sleep(300 * time.Millisecond)
	drain(conns)
	after := snapshot(true)

	owners, client, sites := heapDelta(before.profile, after.profile)
	var total int64
	for _, v := range owners {
		total += v
	}
	per := func(v int64) float64 { return float64(v) / float64(n) }
	b.ReportMetric(per(total), "bytes/conn")
	heapInuse := int64(after.ms.HeapInuse) - int64(before.ms.HeapInuse)
	// What spans hold beyond the live objects of both sides: free slots
	// in spans kept by a live object, left by the handshakes' garbage.
	b.ReportMetric(per(heapInuse-total-client), "slack-B/conn")
	b.ReportMetric(per(heapInuse), "heapinuse/conn")
	b.ReportMetric(per(int64(after.ms.StackInuse)-int64(before.ms.StackInuse)), "stack/conn")
	b.ReportMetric(float64(after.goroutines-before.goroutines), "goroutines")
	b.ReportMetric(per(client), "client-B/conn")
	for _, o := range ownerNames {
		b.ReportMetric(per(owners[o]), o+"-B/conn")
	}
	if before.kernel.ok && after.kernel.ok {
		b.ReportMetric(per(after.kernel.slab-before.kernel.slab), "kslab-B/conn")
		b.ReportMetric(per(after.kernel.unreclaim-before.kernel.unreclaim), "kunreclaim-B/conn")
		b.ReportMetric(per(after.kernel.tcpMem-before.kernel.tcpMem), "ktcpmem-B/conn")
		b.ReportMetric(float64(after.kernel.tcpInuse-before.kernel.tcpInuse), "ktcp-sockets")
	}
	b.ReportMetric(per(after.rss-before.rss), "rss-B/conn")
	if os.Getenv("MEMBENCH_DETAIL") != "" {
		for i, s := range sites {
			if i == 40 {
				break
			}
			b.Logf("%8.1f B/conn %-8s %s", per(s.bytes), s.owner, s.stack)
		}
		for _, c := range slabDelta(before.kernel.caches, after.kernel.caches, 12) {
			b.Logf("slab %-24s %8.1f B/conn", c.name, per(c.bytes))
		}
	}
}

type memSnap struct {
	ms         runtime.MemStats
	profile    map[uint64]heapSite // by hash of the stack
	goroutines int
	rss        int64
	kernel     kernelMem
}

// heapSite is one allocation stack's in-use bytes and owner. The stack's
// text is kept only when asked (the second snapshot): the baseline is
// alive while the second snapshot is taken, and must weigh little there.
type heapSite struct {
	bytes        int64
	owner, stack string
}

// snapshot settles the heap and reads it. Two collections: the heap
// profile publishes the state of the last completed cycle, and sync.Pool
// contents survive one cycle in the victim cache; what is left is held.
func snapshot(keepStacks bool) memSnap {
	runtime.GC()
	runtime.GC()
	var s memSnap
	s.kernel = readKernel()
	runtime.ReadMemStats(&s.ms)
	s.goroutines = runtime.NumGoroutine()
	s.rss = readRSS()
	var buf bytes.Buffer
	_ = pprof.Lookup("heap").WriteTo(&buf, 1)
	s.profile = parseHeap(buf.String(), keepStacks)
	return s
}

var stackSeed = maphash.MakeSeed()

// parseHeap reads the debug=1 text form of the heap profile: a record is
// "inuse_objects: inuse_bytes [alloc_objects: alloc_bytes] @ pcs" followed
// by "#  pc  func+off  file:line" lines. The bytes are not scaled, which
// is exact with MemProfileRate = 1.
func parseHeap(text string, keepStacks bool) map[uint64]heapSite {
	out := map[uint64]heapSite{}
	var inuse int64
	var frames []string
	flush := func() {
		if frames != nil {
			stack := strings.Join(frames, " < ")
			k := maphash.String(stackSeed, stack)
			st := out[k]
			st.bytes += inuse
			st.owner = classify(stack)
			if keepStacks {
				st.stack = stack
			}
			out[k] = st
		}
		frames = nil
	}
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "#\t"):
			if frames == nil {
				continue // the trailer's "# runtime.MemStats" lines
			}
			f := strings.Fields(line) // tabs pad the columns
			if len(f) >= 3 {
				fn := f[2]
				if i := strings.LastIndex(fn, "+0x"); i > 0 {
					fn = fn[:i]
				}
				if len(f) >= 4 {
					// The line tells apart the allocations of one function.
					fn += " " + f[3][strings.LastIndex(f[3], "/")+1:]
				}
				frames = append(frames, fn)
			}
		case strings.Contains(line, " @ "):
			flush()
			head := strings.Fields(line)
			if len(head) >= 2 && strings.HasSuffix(head[0], ":") {
				inuse, _ = strconv.ParseInt(head[1], 10, 64)
				frames = []string{}
			}
		default:
			flush()
		}
	}
	flush()
	return out
}

// ownerNames are the owners bytes/conn is split into, in report order.
var ownerNames = []string{
	"nbio-conn",    // nbio.Conn, its job list
	"conn-addrs",   // the remote address nbio.Conn keeps (slimAddrs); without it, both net.TCPAddr with the sockaddrs their IPs point into
	"nbio-ws",      // nbhttp/websocket.Conn: frame parser state, its buffers
	"http-upgrade", // what the upgrade leaves behind: nbhttp's Conn wrapper, processor, parser, headers
	"nbio-index",   // nbhttp's engine.conns map
	"session",      // gateway.session and what it points to (user id, join state)
	"hub-client",   // hub.Client
	"hub-member",   // hub.Member, and the client's slice of them
	"hub-room",     // rooms: the inbox Room and its name, the room maps, member slices, user maps
	"registry",     // the hub's client registry, the node's other per-connection indexes
	"history",      // the memory store's per-room state
	"other",
}

// ownerRules place an allocation by the first frame, leaf first, that
// contains one of them; runtime frames (map growth, append) are passed on
// the way, which is what makes a map's buckets its owner's. Rules with a
// line number are nbio v1.6.12's (pinned) or this repository's: when the
// hub's lines move, its allocations fall to the function's rule.
var ownerRules = []struct{ owner, match string }{
	{"hub-member", "hub.(*Hub).joinBegin join.go:51"}, // &Member
	{"hub-room", "hub.(*Hub).joinBegin join.go:56"},   // r.members
	{"hub-member", "hub.(*Hub).joinBegin"},            // c.rooms
	{"hub-room", "hub.(*Room)."},
	{"hub-room", "hub.(*Hub).acquire"},
	{"hub-room", "codec.Inbox"},
	{"hub-client", "hub.(*Hub).NewClient"},
	{"registry", "hub.(*Hub).register"},
	{"registry", "gateway.(*pending)"},
	{"registry", "gateway.(*expiries)"},
	{"other", "hub.(*worker)"}, // fan-out queues: a presence frame in flight
	{"history", "gateway/history."},
	{"history", "backend.(*Memory)"},
	{"session", "gateway.(*Server).serveWS"},
	{"session", "gateway.(*Server).identify"},
	{"session", "gateway.(*session)"},
	{"session", "gateway.(*joining)"},
	{"nbio-ws", "nbhttp/websocket."},
	{"conn-addrs", "gateway.slimAddrs"},
	{"conn-addrs", "net.sockaddrToTCP"},
	{"conn-addrs", "syscall.anyToSockaddr"},
	{"nbio-index", "nbhttp.(*Engine).AddConnNonTLSNonBlocking engine.go:711"},
	{"http-upgrade", "nbio/nbhttp."},
	{"nbio-conn", "github.com/lesismal/nbio."},
}

// heapDelta groups after-before by owner; client is what the test's own
// clients and snapshots hold, left out of owners. sites are after's
// stacks with their growth, largest first.
func heapDelta(before, after map[uint64]heapSite) (owners map[string]int64, client int64, sites []heapSite) {
	owners = map[string]int64{}
	add := func(owner string, d int64) {
		if owner == "client" {
			client += d
		} else {
			owners[owner] += d
		}
	}
	for k, st := range after {
		d := st.bytes - before[k].bytes
		if d != 0 {
			add(st.owner, d)
			sites = append(sites, heapSite{bytes: d, owner: st.owner, stack: shortStack(st.stack)})
		}
	}
	for k, st := range before {
		if _, ok := after[k]; !ok {
			add(st.owner, -st.bytes)
		}
	}
	sort.Slice(sites, func(i, j int) bool { return sites[i].bytes > sites[j].bytes })
	return owners, client, sites
}

func classify(stack string) string {
	// The test's own clients and its snapshots, wherever the frame is.
	if strings.Contains(stack, "gateway_test.") {
		return "client"
	}
	for _, fn := range strings.Split(stack, " < ") {
		for _, r := range ownerRules {
			if strings.Contains(fn, r.match) {
				return r.owner
			}
		}
	}
	return "other"
}

// shortStack keeps the first frames outside the runtime, for the log.
func shortStack(stack string) string {
	var keep []string
	for _, fn := range strings.Split(stack, " < ") {
		if strings.HasPrefix(fn, "runtime.") && len(keep) == 0 {
			continue
		}
		keep = append(keep, fn[strings.LastIndex(fn, "/")+1:])
		if len(keep) == 5 {
			break
		}
	}
	return strings.Join(keep, " < ")
}

// openIdle opens n connections as users prefix<i>, each joined to its
// inbox and to r<i%memRooms>, with a few workers: no goroutine stays
// behind a connection once it is open.
func openIdle(b *testing.B, addr string, n int, prefix string) []net.Conn {
	b.Helper()
	conns := make([]net.Conn, n)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan int)
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := dialIdle(addr, prefix+strconv.Itoa(i), "r"+strconv.Itoa(i%memRooms))
				if err != nil {
					once.Do(func() { first = fmt.Errorf("connection %d: %w", i, err) })
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		closeAll(conns)
		b.Fatal(first)
	}
	return conns
}

// dialIdle upgrades by hand, reads welcome and the inbox's joined, joins
// room and waits for its joined (id "1"). Frames from the server are not
// masked and are small: a 7- or 16-bit length.
func dialIdle(addr, user, room string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /ws?user=" + user + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		c.Close()
		return nil, fmt.Errorf("upgrade: %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	// A masked text frame with a zero mask: the payload goes as is.
	join := `{"type":"join","id":"1","room":"` + room + `"}`
	frame := append([]byte{0x81, 0x80 | byte(len(join)), 0, 0, 0, 0}, join...)
	if _, err := c.Write(frame); err != nil {
		c.Close()
		return nil, err
	}
	for {
		p, err := readFrame(br)
		if err != nil {
			c.Close()
			return nil, err
		}
		if bytes.Contains(p, []byte(`"id":"1"`)) {
			if !bytes.Contains(p, []byte(`"type":"joined"`)) {
				c.Close()
				return nil, fmt.Errorf("join %s: %s", room, p)
			}
			break
		}
	}
	if br.Buffered() > 0 {
		// A presence frame may follow the reply; drain reads it later
		// from the socket, so nothing may be left in br.
		_, _ = br.Discard(br.Buffered())
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func readFrame(br *bufio.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := readFull(br, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := readFull(br, l[:]); err != nil {
			return nil, err
		}
		n = int(l[0])<<8 | int(l[1])
	case 127:
		return nil, fmt.Errorf("frame too large for this client")
	}
	p := make([]byte, n)
	_, err := readFull(br, p)
	return p, err
}

func readFull(br *bufio.Reader, p []byte) (int, error) {
	for i := 0; i < len(p); {
		k, err := br.Read(p[i:])
		i += k
		if err != nil {
			return i, err
		}
	}
	return len(p), nil
}

// drain reads whatever the server sent after the joins (presence), until
// a socket has nothing for a few milliseconds. Partial frames do not
// matter: the bytes are thrown away and nothing more is read.
func drain(conns []net.Conn) {
	buf := make([]byte, 64<<10)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		_ = c.SetReadDeadline(time.Time{})
	}
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

// kernelMem is what the host's kernel holds: /proc/meminfo Slab and
// SUnreclaim, /proc/net/sockstat TCP inuse and mem (pages), in bytes.
type kernelMem struct {
	ok                      bool
	slab, unreclaim, tcpMem int64
	tcpInuse                int64
	caches                  map[string]int64 // /proc/slabinfo: active objects x size, by cache
}

func readKernel() kernelMem {
	var k kernelMem
	mi, err1 := os.ReadFile("/proc/meminfo")
	ss, err2 := os.ReadFile("/proc/net/sockstat")
	if err1 != nil || err2 != nil {
		return k
	}
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Slab:":
			k.slab = v << 10
		case "SUnreclaim:":
			k.unreclaim = v << 10
		}
	}
	for _, line := range strings.Split(string(ss), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "TCP:" {
			continue
		}
		for i := 1; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseInt(f[i+1], 10, 64)
			switch f[i] {
			case "inuse":
				k.tcpInuse = v
			case "mem":
				k.tcpMem = v * int64(os.Getpagesize())
			}
		}
	}
	k.ok = true
	k.caches = readSlabinfo()
	return k
}

// readSlabinfo reads the bytes of active objects of each slab cache; nil
// when /proc/slabinfo is not readable (it takes root).
func readSlabinfo() map[string]int64 {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(f[0], "#") || f[0] == "slabinfo" {
			continue
		}
		active, _ := strconv.ParseInt(f[1], 10, 64)
		size, _ := strconv.ParseInt(f[3], 10, 64)
		out[f[0]] = active * size
	}
	return out
}

type slabCache struct {
	name  string
	bytes int64
}

// slabDelta returns the top caches by growth.
func slabDelta(before, after map[string]int64, top int) []slabCache {
	var out []slabCache
	for name, v := range after {
		if d := v - before[name]; d > 0 {
			out = append(out, slabCache{name, d})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].bytes > out[j].bytes })
	return out[:min(top, len(out))]
}

// readRSS is the process's VmRSS in bytes (clients included).
func readRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v << 10
		}
	}
	return 0
}
