// Command wsbench is the gateway's load harness: it drives a running gateway
// over loopback with many WebSocket connections on an nbio event loop and
// reports latency percentiles, deliveries per CPU-second and memory per
// connection. Logic lives in package bench.
//
//	wsbench idle    --addr 127.0.0.1:8080 --pid PID --steps 1000,5000,10000,18000
//	wsbench connect --addr ... --conns 18000
//	wsbench fanout  --addr ... --pid PID --rooms 1 --members 2000 --rate 200
//	wsbench fanout  --addr ... --pid PID --rooms 1 --members 2000 --rate 50 --slow 200
//	wsbench ramp    --addr ... --pid PID --rooms 1 --members 10000 --rates 10,20,50
//	wsbench fanout  --addr ... --pid PID --proto centrifugo --rooms 100 --members 100 --rate 2000
//	wsbench fanout  --addr ... --pid PID --proto broadcast --rooms 1 --members 2000 --rate 50
//	wsbench dm      --addr ... --pid PID --pairs 500 --rate 1000
//	wsbench churn   --addr ... --pid PID --rooms 10 --members 100 --rate 100 --churn 50
//	wsbench report  --out DIR RESULT.json...
//	wsbench peers   --out DIR --versions bin/peers/VERSIONS peers-SERVER-LOAD.json...
//	wsbench plan    --users 1000000 --rooms-per-user 10 --msgs-per-user-per-min 2 --avg-room-size 50 [--from RESULT.json...]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lesismal/nbio/logging"

	"github.com/chatgw/gateway/bench"
)

func main() {
	logging.SetLevel(logging.LevelError) // nbio's start/stop lines are noise here
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "idle", "connect", "fanout", "ramp", "dm", "churn", "storm":
		err = runScenario(cmd, args)
	case "hold":
		err = runHold(args)
	case "report":
		err = runReport(args)
	case "peers":
		err = runPeers(args)
	case "plan":
		err = runPlan(args)
	case "soakreport":
		err = runSoakReport(args)
	case "-h", "--help", "help":
		usage()
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the usage was printed; not an error
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: wsbench COMMAND [flags]

scenarios (each takes --addr, --pid, --json and its own flags; -h lists them;
idle, connect, fanout and ramp also speak other servers' protocols: --proto centrifugo|broadcast):
  idle      ramp to N connections in steps; gateway memory per connection
  connect   handshake rate and connect latency
  fanout    R rooms x M members, P publishers at a total rate; latency, loss, deliveries per CPU-second
            (--slow N: N of each room's members join and never read; latency is the others')
  ramp      fanout at rising rates until p99 passes a bound or anything is lost
  dm        pairs exchanging direct messages; latency and rate
  churn     fanout while connections open and close at a rate
  storm     fanout while N connections arrive at once; members' latency before, during, after
  hold      internal: one of idle's worker processes (reads counts on stdin)
results:
  report    write a Markdown summary with charts from result JSON files
  peers     side-by-side table of the gateway and its peers (scripts/bench.sh --peers)
  plan      capacity plan from measured figures
  soakreport  plot scripts/soak.sh's CSV and judge each series for an upward trend
`)
}

type common struct {
	fs         *flag.FlagSet
	addr       string
	pid        int
	src        string
	pollers    int
	flight     int
	jsonOut    string
	commit     string
	gwFlags    string
	dialTimout time.Duration
	proto      string
	path       string
	metrics    string
}

func newCommon(name string) *common {
	c := &common{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	c.fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "gateway public address (host:port)")
	c.fs.IntVar(&c.pid, "pid", 0, "gateway process id, to read its RSS and CPU time from /proc")
	c.fs.StringVar(&c.src, "src", "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4", "source addresses to dial from, rotated (past one address's ephemeral ports)")
	c.fs.IntVar(&c.pollers, "pollers", 1, "client event loop goroutines")
	c.fs.IntVar(&c.flight, "dial-flight", 64, "handshakes in flight at once")
	c.fs.StringVar(&c.jsonOut, "json", "", "also write the result as JSON to this file")
	c.fs.StringVar(&c.commit, "commit", "", "gateway commit to record (default: this work tree's)")
	c.fs.StringVar(&c.gwFlags, "gateway-flags", "", "the gateway's flags, to record beside the figures")
	c.fs.DurationVar(&c.dialTimout, "dial-timeout", 10*time.Second, "per-connection handshake timeout")
	c.fs.StringVar(&c.proto, "proto", "gateway", "the server's protocol: gateway, centrifugo (its JSON protocol) or broadcast (every text message to every client; one room); other than gateway: idle, connect, fanout and ramp only")
	c.fs.StringVar(&c.path, "path", "", "the WebSocket endpoint's path (default: /ws; centrifugo: /connection/websocket)")
	c.fs.StringVar(&c.metrics, "metrics", "", "fanout/ramp: the gateway's /metrics URL (e.g. http://127.0.0.1:8081/metrics); each step then reports where the gateway's latency went")
	return c
}

func (c *common) target() (bench.Target, error) {
	var srcs []string
	for _, s := range strings.Split(c.src, ",") {
		if s = strings.TrimSpace(s); s != "" {
			srcs = append(srcs, s)
		}
	}
	p, err := bench.ProtoNamed(c.proto)
	if err != nil {
		return bench.Target{}, err
	}
	return bench.Target{Addr: c.addr, PID: c.pid, Srcs: srcs, Pollers: c.pollers, DialFlight: c.flight, DialTimeout: c.dialTimout,
		Proto: p, Path: c.path, Metrics: c.metrics}, nil
}

// protoArgs are the --proto and --path flags to pass on to worker processes.
func (c *common) protoArgs() []string {
	return []string{"--proto", c.proto, "--path", c.path}
}

// numbers parses a comma-separated list with parse.
func numbers[T any](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		n, err := parse(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

func runScenario(name string, args []string) error {
	c := newCommon(name)
	fs := c.fs
	steps := fs.String("steps", "1000,5000,10000,18000", "idle: connection counts to measure at")
	settle := fs.Duration("settle", 2*time.Second, "idle: wait before reading memory at each step")
	conns := fs.Int("conns", 18000, "connect: connections to open")
	rooms := fs.Int("rooms", 1, "idle/fanout/ramp/churn/storm: rooms (idle: rooms the connections spread over)")
	members := fs.Int("members", 2000, "fanout/ramp/churn/storm: members per room")
	pubs := fs.Int("publishers", 0, "fanout/ramp/churn/storm: publishing members (default: one per room)")
	rate := fs.Float64("rate", 200, "fanout/dm/churn/storm: messages per second in all")
	rates := fs.String("rates", "50,100,200,400,800,1600", "ramp: rates to try in turn")
	payload := fs.Int("payload", 100, "fanout/ramp/dm/churn/storm: message text bytes")
	dur := fs.Duration("duration", 10*time.Second, "fanout/ramp/dm/churn/storm: sending time per step")
	drain := fs.Duration("drain", 3*time.Second, "fanout/ramp/dm/churn/storm: wait for deliveries after sending")
	bound := fs.Duration("p99-bound", 50*time.Millisecond, "ramp: stop when p99 exceeds this")
	workers := fs.Int("workers", 0, "idle/connect: worker processes (0: as many as the per-process open-file limit needs)")
	pairs := fs.Int("pairs", 500, "dm: pairs of users")
	churn := fs.Float64("churn", 50, "churn: connections opened (and later closed) per second")
	hold := fs.Duration("hold", 2*time.Second, "churn: how long each churning connection stays")
	storm := fs.Int("storm", 15000, "storm: connections arriving at once")
	stormFlight := fs.Int("storm-flight", 2000, "storm: handshakes in flight at once")
	slow := fs.Int("slow", 0, "fanout/ramp/churn/storm: members per room that join and then never read (raw TCP, small SO_RCVBUF); latency and deliveries are the other members'")
	slowRcv := fs.Int("slow-rcvbuf", bench.DefaultSlowRcvBuf, "fanout/ramp/churn/storm: SO_RCVBUF of the --slow readers' sockets, in bytes")
	ignoreLimits := fs.Bool("ignore-limits", false, "fanout/ramp/dm/churn/storm: run even when the node's announced limits (welcome) would close the senders")
	common := map[string]bool{}
	for _, n := range []string{"addr", "pid", "src", "pollers", "dial-flight", "json", "commit", "gateway-flags", "dial-timeout", "proto", "path"} {
		common[n] = true
	}
	fs.Usage = scenarioUsage(fs, name, common)
	timeline := fs.Bool("timeline", false, "fanout/ramp/churn/storm: keep per-second latency, kernel TCP memory and gateway RSS in each step (on whenever --slow is given)")
	if name == "idle" && !flagGiven(args, "rooms") {
		*rooms = 100
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := c.target()
	if err != nil {
		return err
	}
	if t.Proto != bench.ProtoGateway {
		switch name {
		case "idle", "connect", "fanout", "ramp":
		default:
			return fmt.Errorf("%s speaks only the gateway's protocol (--proto %s: idle, connect, fanout and ramp only)", name, t.Proto.Name)
		}
		if t.Proto.OneRoom && !flagGiven(args, "rooms") {
			*rooms = 1
		}
		if t.Proto.OneRoom && *rooms != 1 {
			return fmt.Errorf("--proto %s has one implicit room: --rooms must be 1 (got %d)", t.Proto.Name, *rooms)
		}
	}
	if *pubs == 0 {
		*pubs = *rooms
	}
	fp := bench.FanoutParams{Rooms: *rooms, Members: *members, Publishers: *pubs, Rate: *rate,
		Payload: *payload, Duration: *dur, Drain: *drain, Slow: *slow, SlowRcvBuf: *slowRcv,
		Timeline: *timeline || flagGiven(args, "slow")}
	if name != "idle" && name != "connect" && !*ignoreLimits && t.Proto.Limits {
		l, err := readLimits(c.addr, c.dialTimout)
		if err != nil {
			return err
		}
		if err := checkLimits(name, l, fp, *pairs, *rate); err != nil {
			return err
		}
	}
	started := time.Now()
	if c.commit == "" {
		// Read now, not when a long run ends: commits made meanwhile are
		// not what the gateway under test was built from.
		c.commit = bench.GitCommit(".")
	}
	var res *bench.Result
	switch name {
	case "idle":
		var st []int
		if st, err = numbers(*steps, strconv.Atoi); err == nil {
			if n := workersFor(*workers, slices.Max(st)); n > 1 {
				res, err = idleWorkers(c, n, st, *rooms, *settle)
			} else {
				res, err = bench.Idle(t, st, *rooms, *settle)
			}
		}
	case "connect":
		if n := workersFor(*workers, *conns); n > 1 {
			res, err = connectWorkers(c, n, *conns)
		} else {
			res, err = bench.Connect(t, *conns)
		}
	case "fanout":
		res, err = bench.Fanout(t, fp)
	case "dm":
		res, err = bench.DM(t, *pairs, *rate, *payload, *dur, *drain)
	case "churn":
		res, err = bench.Churn(t, fp, *churn, *hold)
	case "storm":
		res, err = bench.Storm(t, fp, *storm, *stormFlight)
	case "ramp":
		var rs []float64
		if rs, err = numbers(*rates, parseFloat); err == nil {
			res, err = bench.Ramp(t, fp, rs, *bound)
		}
	}
	if res == nil {
		return err
	}
	res.Started = started
	res.Machine = bench.ThisMachine()
	res.Gateway = bench.GatewayInfo{Addr: c.addr, PID: c.pid, Commit: c.commit}
	if c.gwFlags != "" {
		res.Gateway.Flags = strings.Fields(c.gwFlags)
	}
	res.Params = map[string]string{}
	fs.Visit(func(f *flag.Flag) { res.Params[f.Name] = f.Value.String() })
	keys := []string{"rooms", "members", "publishers", "payload", "slow"}
	switch name {
	case "dm":
		keys = []string{"pairs", "payload"}
	case "idle", "connect":
		keys = nil
	}
	for _, k := range keys {
		if _, ok := res.Params[k]; !ok {
			res.Params[k] = fs.Lookup(k).Value.String()
		}
	}
	res.Params["p99_bound_ms"] = strconv.FormatFloat(float64(bound.Microseconds())/1000, 'f', -1, 64)
	res.Params["harness_gomaxprocs"] = strconv.Itoa(runtime.GOMAXPROCS(0))
	bench.Table(os.Stdout, res)
	if c.jsonOut != "" {
		if werr := res.WriteJSON(c.jsonOut); werr != nil {
			return werr
		}
	}
	if err == nil {
		err = unclean(name, res) // figures from a lossy run must not pass as a result
	}
	return err
}

func flagGiven(args []string, name string) bool {
	for _, a := range args {
		if a == "-"+name || a == "--"+name || strings.HasPrefix(a, "-"+name+"=") || strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}

func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	out := fs.String("out", "bench/results/report", "directory for README.md and the charts")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("report: give result JSON files")
	}
	results, err := bench.ReadResults(fs.Args()...)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := bench.WriteReport(*out, results); err != nil {
		return err
	}
	fmt.Println("wrote", *out+"/README.md")
	return nil
}

func runPlan(args []string) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	var in bench.PlanInput
	fs.IntVar(&in.Users, "users", 0, "users online at peak")
	fs.Float64Var(&in.ConnectionsPerUser, "conns-per-user", 1, "connections per user (devices, tabs)")
	fs.Float64Var(&in.RoomsPerUser, "rooms-per-user", 1, "rooms each user is in")
	fs.Float64Var(&in.MsgsPerUserPerMin, "msgs-per-user-per-min", 1, "messages each user sends per minute at peak")
	fs.Float64Var(&in.AvgRoomSize, "avg-room-size", 10, "members per room on average")
	fs.IntVar(&in.NodeCores, "node-cores", 2, "cores per node")
	fs.Float64Var(&in.NodeMemGiB, "node-mem-gib", 24, "memory per node, GiB")
	fs.Float64Var(&in.Headroom, "headroom", 0.5, "fraction of each node kept free (0.5: plan to use at most half)")
	fs.Float64Var(&in.BytesPerConn, "bytes-per-conn", 0, "gateway memory per connection (default: from --from results)")
	fs.Float64Var(&in.DeliveriesPerCPUSec, "deliveries-per-cpu-sec", 0, "deliveries per gateway CPU-second (default: from --from results)")
	fs.Float64Var(&in.KernelBytesPerSocket, "kernel-bytes-per-socket", 0, fmt.Sprintf("kernel memory per socket, bytes (default: measured by the --from idle result, else an assumed %d)", bench.AssumedKernelBytesPerSocket))
	fs.StringVar(&in.RedisPubSub, "redis-pubsub", "", "also plan Redis Cluster masters for the messages: classic or sharded pub/sub (empty: gateway nodes only)")
	fs.Float64Var(&in.RedisMsgsPerSecPerMaster, "redis-msgs-per-master", 0, "with --redis-pubsub: messages (append and publish) one Redis master takes per second (BenchmarkPublishRedis in gateway/cluster measures it)")
	from := fs.String("from", "", "comma-separated result JSON files, or directories of them, to take the measured figures from\n(the fan-out profile is the one whose room size is closest to --avg-room-size)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from != "" {
		var err error
		if in, err = bench.PlanFromFiles(in, strings.Split(*from, ",")...); err != nil {
			return err
		}
	}
	if in.Users <= 0 || in.BytesPerConn <= 0 || in.DeliveriesPerCPUSec <= 0 {
		return fmt.Errorf("plan: need --users and measured figures (--from RESULTS, or --bytes-per-conn and --deliveries-per-cpu-sec)")
	}
	fmt.Print(bench.Plan(in).String())
	return nil
}

func runSoakReport(args []string) error {
	fs := flag.NewFlagSet("soakreport", flag.ContinueOnError)
	path := fs.String("csv", "", "the soak's CSV (scripts/soak.sh)")
	out := fs.String("out", ".", "directory for soak.png and soak.md")
	warmup := fs.Duration("warmup", 5*time.Minute, "samples before this are warm-up, not judged")
	tol := fs.Float64("tolerance", 0.05, "a series rises when its fitted line grows more than this fraction of its mean")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Open(*path)
	if err != nil {
		return err
	}
	defer f.Close()
	series, err := bench.ReadSoakCSV(f)
	if err != nil {
		return err
	}
	w := warmup.Seconds()
	if last := series[0].Seconds; len(last) > 0 && w >= last[len(last)-1]/2 {
		w = last[len(last)-1] / 5 // a short run: judge the last 80%
	}
	trends, err := bench.SoakReport(series, *out, w, *tol)
	if err != nil {
		return err
	}
	rising := 0
	for _, t := range trends {
		verdict := "flat"
		if t.Rising {
			verdict, rising = "RISING", rising+1
		}
		fmt.Printf("%-18s mean %14.0f  growth %+6.1f%%  %s\n", t.Name, t.Mean, t.Growth*100, verdict)
	}
	fmt.Println("wrote", *out+"/soak.md", "and", *out+"/soak.png")
	if rising > 0 {
		return fmt.Errorf("%d series trend upward after warm-up", rising)
	}
	return nil
}
