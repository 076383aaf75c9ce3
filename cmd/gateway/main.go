// Command gateway runs one chat edge node. See the README for its flags.
// Every flag can also be set as an environment variable GATEWAY_<NAME>
// (upper case, dashes as underscores) or as a key of a TOML file given with
// --config; a flag on the command line wins over the environment, which
// wins over the file, which wins over the default.
//
//	gateway [flags]        run a node
//	gateway version        print the version and commit
//	gateway history ...    export, import and list rooms of a stopped node's history (history.go)
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/pkg/profile"

	"github.com/chatgw/gateway/gateway"
)

// Set at build time: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc1234".
// Without them, the module version and VCS revision Go records are used.
var version, commit string

// defaultGOGC is the collector's target when the GOGC environment variable
// is not set: 50 rather than Go's 100. A node's heap is mostly long-lived
// connection state and its fan-out allocates nothing per recipient, so a
// tighter target cost no measurable CPU per delivery (1x2000 at 200 msg/s,
// 100x100 at 2,000 msg/s) and cuts the process memory per idle connection
// by about 300 B (README, "Memory per idle connection, by owner"). GOGC
// set in the environment wins, as Go documents.
const defaultGOGC = 50

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("gateway", versionString())
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "history" {
		os.Exit(historyMain(os.Args[2:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr))
	}
	if err := run(os.Args[1:]); err != nil {
		// One line, naming the flag at fault: gateway errors carry their
		// own "gateway:" prefix already.
		fmt.Fprintln(os.Stderr, "gateway:", strings.TrimPrefix(err.Error(), "gateway: "))
		os.Exit(2)
	}
}

// versionString is "VERSION (commit COMMIT)", from the link flags or else
// from the build info.
func versionString() string {
	v, c := version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && c == "" && len(s.Value) >= 7 {
				c = s.Value[:7]
			}
			if s.Key == "vcs.modified" && s.Value == "true" && commit == "" && c != "" {
				c += "-dirty"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if c == "" {
		c = workTreeCommit()
	}
	if c == "" {
		c = "unknown"
	}
	return v + " (commit " + c + ")"
}

// workTreeCommit is the commit of the git work tree the process runs in,
// when that tree is this module's, else "": `go run` (and a build with
// -buildvcs=false) embeds no VCS information of its own.
func workTreeCommit() string {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return ""
	}
	mod, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(top)), "go.mod"))
	if err != nil || !bytes.HasPrefix(mod, []byte("module github.com/chatgw/gateway\n")) {
		return ""
	}
	head, err := exec.Command("git", "rev-parse", "--short=7", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(head))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "-dirty"
	}
	return c
}

// options is everything the command line decides beyond gateway.Config.
type options struct {
	cfg         gateway.Config
	logLevel    slog.Level
	logFormat   string
	profile     string
	profileDir  string
	printConfig bool
}

func run(args []string) error {
	opt, fs, err := parse(args, os.LookupEnv, os.Stderr)
	if err != nil || opt == nil {
		return err // opt is nil after --help
	}
	if opt.printConfig {
		return printConfig(os.Stdout, fs)
	}
	opt.cfg.Logger = newLogger(os.Stderr, opt.logFormat, opt.logLevel)
	opt.cfg.Version = versionString()
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGOGC)
	}

	if opt.profile != "" {
		// Written when run returns, after the drain: the whole life of
		// the process. A second signal kills it without one.
		defer profile.Start(profileMode(opt.profile), profile.ProfilePath(opt.profileDir),
			profile.NoShutdownHook, profile.Quiet).Stop()
	}
	// Signals are caught before the node says it is listening: a SIGTERM
	// right after that line must drain, not kill.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := gateway.New(opt.cfg)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	stop() // a second signal kills the process the usual way
	return srv.Drain(context.Background())
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	o := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

var profileModes = map[string]func(*profile.Profile){
	"cpu": profile.CPUProfile, "mem": profile.MemProfile, "allocs": profile.MemProfileAllocs,
	"block": profile.BlockProfile, "mutex": profile.MutexProfile, "goroutine": profile.GoroutineProfile,
	"trace": profile.TraceProfile,
}

func profileMode(name string) func(*profile.Profile) { return profileModes[name] }

// parse reads the flags, then the environment, then the --config file. It
// returns nil options after --help.
func parse(args []string, lookup func(string) (string, bool), out io.Writer) (*options, *flag.FlagSet, error) {
	o := &options{cfg: gateway.DefaultConfig()}
	cfg := &o.cfg
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(out)
	configFile := fs.String("config", "", "TOML file whose keys are these flags' names (max-rooms = 50); flags and GATEWAY_* win over it")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "public listen address; GET /ws upgrades to WebSocket")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", cfg.AdminAddr, "admin listen address: /healthz, /readyz, /metrics, /api/ (empty: none)")
	fs.StringVar(&cfg.NodeID, "node-id", "", "node name announced in welcome (empty: the host name)")
	fs.BoolVar(&cfg.Anonymous, "anonymous", false, "anonymous mode: ?user=<id> names the user, no token (when not given: on without a JWT key, off with one)")
	fs.IntVar(&cfg.MaxMessageBytes, "max-message-bytes", cfg.MaxMessageBytes, "largest client message in bytes; one byte more closes with 1009")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "client frames per second per connection (token bucket refill)")
	fs.IntVar(&cfg.Burst, "burst", cfg.Burst, "token bucket size: frames a connection may send at once")
	fs.IntVar(&cfg.MaxRooms, "max-rooms", cfg.MaxRooms, "rooms one connection may join, its inbox not counted")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", cfg.Heartbeat, "WebSocket ping interval; a connection silent for 2x is closed")
	fs.IntVar(&cfg.HistorySize, "history-size", cfg.HistorySize, "messages kept per room for history and resume")
	fs.IntVar(&cfg.PresenceMaxMembers, "presence-max-members", cfg.PresenceMaxMembers, "rooms with more distinct users get no presence events")
	fs.Int64Var(&cfg.OutboundMaxBytes, "outbound-max-bytes", cfg.OutboundMaxBytes, "pending outbound bytes per connection; over it the connection is closed with 4001")
	fs.DurationVar(&cfg.FanoutBudget, "fanout-budget", cfg.FanoutBudget, "when fan-out is busy, how long a message may wait so several share each write, counted to its write (0: never wait); latency traded for deliveries per CPU-second")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "on SIGTERM/SIGINT, close every connection with 1001 within this")
	fs.StringVar(&cfg.JWTSecret, "jwt-secret", "", "HS256 secret for client JWTs (prefer GATEWAY_JWT_SECRET: flags show in ps)")
	fs.StringVar(&cfg.JWTPublicKeyFile, "jwt-public-key", "", "PEM file with the RSA (RS256) or ECDSA P-256 (ES256) public key for client JWTs")
	fs.StringVar(&cfg.JWTAudience, "jwt-audience", "", "required JWT \"aud\" (unchecked when empty)")
	fs.StringVar(&cfg.JWTIssuer, "jwt-issuer", "", "required JWT \"iss\" (unchecked when empty)")
	origins := fs.String("origins", "", "comma-separated Origin allowlist, e.g. https://chat.example.com (empty: any); others get HTTP 403")
	fs.IntVar(&cfg.MaxConns, "max-conns", 0, "connection cap for the node, 0 for none; beyond it HTTP 503")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", 0, "sockets per client address, counted from accept (handshakes and page requests too), 0 for none; beyond it HTTP 429 at accept")
	fs.IntVar(&cfg.MaxPendingPerIP, "max-handshakes-per-ip", cfg.MaxPendingPerIP, "sockets per client address still in their handshake (accepted, not yet upgraded), 0 for none; beyond it HTTP 429 at accept")
	fs.IntVar(&cfg.MaxHeaderBytes, "max-header-bytes", cfg.MaxHeaderBytes, "bytes a socket may send before its upgrade (request line and headers), counted as they arrive; beyond it HTTP 431 and close")
	fs.Float64Var(&cfg.HandshakeRate, "handshake-rate", 0, "WebSocket upgrades admitted per second (burst: one second's worth); over it HTTP 503 with Retry-After, so a reconnect storm cannot starve connected clients; 0: no limit")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", cfg.HandshakeTimeout, "a new socket must complete its WebSocket upgrade within this")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate chain: serve wss:// on --addr (with --tls-key)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.BoolVar(&cfg.NoPage, "no-page", false, "do not serve the chat page (/) and /client.js on --addr")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ on the admin listener (never the public one)")
	fs.StringVar(&cfg.RedisURL, "redis-url", "", "cluster mode: redis://[user:pass@]host:port/db or rediss:// (TLS); messages, history and presence go through Redis (empty: this node alone, in memory)")
	fs.DurationVar(&cfg.PresenceRefresh, "presence-refresh", cfg.PresenceRefresh, "cluster mode: how often a node refreshes its users' presence in Redis; a dead node's users go offline after 3x")
	fs.DurationVar(&cfg.HistoryTTL, "history-ttl", cfg.HistoryTTL, "a room's history is dropped this long after its last message (memory store: once it also has no members; Redis: its keys expire) (0: never)")
	fs.Int64Var(&cfg.HistoryMaxBytes, "history-max-bytes", cfg.HistoryMaxBytes, "memory store: bytes of history held in all; over it the rooms idle longest (no members) are dropped first, then the oldest messages (0: no cap)")
	fs.StringVar(&cfg.DataDir, "data-dir", "data", "directory of the durable history store (messages, epochs, idempotency keys survive restarts); empty: history in memory, lost on restart. Unused with --redis-url (Redis keeps the history)")
	fs.StringVar(&cfg.RedisPubSub, "redis-pubsub", cfg.RedisPubSub, "cluster mode: how messages travel between nodes: sharded (SPUBLISH/SSUBSCRIBE: a room's messages load only its Redis Cluster shard; Redis 7+), classic (PUBLISH: Redis Cluster copies every message to every node), auto (sharded on a Redis Cluster URL, classic on one Redis or Sentinel). Every node of a deployment must use the same; switching moves rooms' keys (history starts over)")
	fs.StringVar(&cfg.HistorySync, "history-sync", cfg.HistorySync, "durable store: when an acknowledged message is on disk: always (fsync before the ack; sends waiting together share one), interval (fsync every --history-sync-every; a machine crash may lose that much), none (the OS decides)")
	fs.DurationVar(&cfg.HistorySyncEvery, "history-sync-every", cfg.HistorySyncEvery, "durable store, --history-sync interval: fsync this often")
	fs.DurationVar(&cfg.HistoryRetention, "history-retention", 30*24*time.Hour, "durable store: messages older than this are removed in the background (0: kept)")
	fs.IntVar(&cfg.HistoryKeep, "history-keep", 100000, "durable store: messages kept per room, the newest (0: no count limit)")
	fs.Int64Var(&cfg.HistoryMaxDisk, "history-max-disk", 10<<30, "durable store: bytes of database in use; over it the oldest messages of all rooms are removed first (0: no cap)")
	fs.DurationVar(&cfg.HistorySweep, "history-sweep", cfg.HistorySweep, "durable store: how often retention (--history-retention, --history-keep, --history-max-disk) runs")
	fs.StringVar(&cfg.APIKey, "api-key", "", "Bearer key of the server API (/api/ on the admin listener); empty: API off (prefer GATEWAY_API_KEY)")
	fs.StringVar(&cfg.HookURL, "hook-url", "", "application hooks (docs/hooks.md): POST <url>/<event> for each event of --hook-events; empty: hooks off")
	fs.StringVar(&cfg.HookEvents, "hook-events", cfg.HookEvents, "comma-separated hook events: connect, join, publish (decisions the gateway waits for), message, presence, disconnect (notifications)")
	fs.DurationVar(&cfg.HookTimeout, "hook-timeout", cfg.HookTimeout, "bound on one hook call, answer included; a decision not answered within it gets --hook-fail")
	fs.StringVar(&cfg.HookSecret, "hook-secret", "", "key signing every hook body: X-Gateway-Signature: sha256=<hex HMAC-SHA256> (prefer GATEWAY_HOOK_SECRET: flags show in ps)")
	fs.StringVar(&cfg.HookFail, "hook-fail", cfg.HookFail, "a join or publish decision whose hook call failed (timeout, error, other status): closed refuses it with unavailable, open allows it")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.profile, "profile", "", "record a profile for the life of the process, written on clean shutdown: cpu, mem, allocs, block, mutex, goroutine or trace")
	fs.StringVar(&o.profileDir, "profile-dir", ".", "directory --profile writes to (cpu.pprof, mem.pprof, ...)")
	fs.BoolVar(&o.printConfig, "print-config", false, "print the effective configuration as a --config file and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gateway [flags]\n       gateway version\n       gateway history export|import|rooms [flags]  (gateway history --help)\n\n"+
			"Runs one chat gateway node. Each flag may also be set as GATEWAY_<NAME>\n"+
			"(e.g. GATEWAY_MAX_ROOMS=50) or as a key of the --config file; the command\n"+
			"line wins over the environment, the environment over the file.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil, fs, nil
		}
		return nil, fs, err
	}
	if fs.NArg() > 0 {
		return nil, fs, fmt.Errorf("unexpected argument %q (flags start with --; the commands are \"version\" and \"history\")", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if err := applyEnv(fs, lookup, given); err != nil {
		return nil, fs, err
	}
	if *configFile != "" {
		if err := applyFile(fs, *configFile, given); err != nil {
			return nil, fs, err
		}
	}
	if !given["anonymous"] {
		// With a key, anonymous access must be asked for.
		cfg.Anonymous = !cfg.AuthConfigured()
	}
	if cfg.RedisURL != "" && !given["data-dir"] {
		cfg.DataDir = "" // Redis keeps a cluster's history
	}
	if cfg.NodeID == "" {
		cfg.NodeID = gateway.DefaultConfig().NodeID
	}
	for _, v := range strings.Split(*origins, ",") {
		if v = strings.TrimSpace(v); v != "" {
			cfg.Origins = append(cfg.Origins, v)
		}
	}
	if err := o.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return nil, fs, fmt.Errorf("--log-level: %w", err)
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return nil, fs, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	if o.profile != "" && profileModes[o.profile] == nil {
		return nil, fs, fmt.Errorf("--profile %q: want cpu, mem, allocs, block, mutex, goroutine or trace", o.profile)
	}
	return o, fs, nil
}
