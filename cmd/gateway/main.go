// Command gateway runs one chat edge node. See the README for its flags;
// every flag can also be set as an environment variable GATEWAY_<NAME>
// (upper case, dashes as underscores), and a flag given on the command line
// wins over the environment.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/chatgw/gateway/gateway"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	cfg := gateway.DefaultConfig()
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "public listen address; GET /ws upgrades to WebSocket")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", cfg.AdminAddr, "admin listen address for /healthz and /readyz (empty: none)")
	fs.StringVar(&cfg.NodeID, "node-id", cfg.NodeID, "node name announced in welcome (default: host name)")
	fs.BoolVar(&cfg.Anonymous, "anonymous", cfg.Anonymous, "anonymous mode: ?user=<id> names the user, no token (default: on only when no JWT key is set)")
	fs.IntVar(&cfg.MaxMessageBytes, "max-message-bytes", cfg.MaxMessageBytes, "largest client message in bytes; one byte more closes with 1009")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "client frames per second per connection (token bucket refill)")
	fs.IntVar(&cfg.Burst, "burst", cfg.Burst, "token bucket size: frames a connection may send at once")
	fs.IntVar(&cfg.MaxRooms, "max-rooms", cfg.MaxRooms, "rooms one connection may join, its inbox not counted")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", cfg.Heartbeat, "WebSocket ping interval; a connection silent for 2x is closed")
	fs.IntVar(&cfg.HistorySize, "history-size", cfg.HistorySize, "messages kept per room for history and resume")
	fs.IntVar(&cfg.PresenceMaxMembers, "presence-max-members", cfg.PresenceMaxMembers, "rooms with more distinct users get no presence events")
	fs.Int64Var(&cfg.OutboundMaxBytes, "outbound-max-bytes", cfg.OutboundMaxBytes, "pending outbound bytes per connection; over it the connection is closed with 4001")
	fs.DurationVar(&cfg.CoalesceMax, "coalesce-max", cfg.CoalesceMax, "under load, how long fan-out may hold messages so several share a write (0: never); trades latency for deliveries per CPU-second")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "on SIGTERM/SIGINT, close every connection with 1001 within this")
	fs.StringVar(&cfg.JWTSecret, "jwt-secret", "", "HS256 secret for client JWTs (prefer GATEWAY_JWT_SECRET: flags show in ps)")
	fs.StringVar(&cfg.JWTPublicKeyFile, "jwt-public-key", "", "PEM file with the RSA (RS256) or ECDSA P-256 (ES256) public key for client JWTs")
	fs.StringVar(&cfg.JWTAudience, "jwt-audience", "", "required JWT \"aud\" (unchecked when empty)")
	fs.StringVar(&cfg.JWTIssuer, "jwt-issuer", "", "required JWT \"iss\" (unchecked when empty)")
	origins := fs.String("origins", "", "comma-separated Origin allowlist, e.g. https://chat.example.com (empty: any); others get HTTP 403")
	fs.IntVar(&cfg.MaxConns, "max-conns", 0, "connection cap for the node, 0 for none; beyond it HTTP 503")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", 0, "connections per client address, 0 for none; beyond it HTTP 429")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", cfg.HandshakeTimeout, "a new socket must complete its WebSocket upgrade within this")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate chain: serve wss:// on --addr (with --tls-key)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ on the admin listener (never the public one)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gateway [flags]\n\nRuns one chat gateway node. Each flag may also be set as GATEWAY_<NAME>,\ne.g. GATEWAY_MAX_ROOMS=50; the command line wins.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	anonGiven, err := applyEnv(fs, os.LookupEnv)
	if err != nil {
		return err
	}
	if !anonGiven && cfg.AuthConfigured() {
		cfg.Anonymous = false // with a key, anonymous access must be asked for
	}
	for _, o := range strings.Split(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.Origins = append(cfg.Origins, o)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	srv, err := gateway.New(cfg)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	<-ctx.Done()
	stop() // a second signal kills the process the usual way
	return srv.Drain(context.Background())
}

// applyEnv sets every flag not given on the command line from its
// GATEWAY_<NAME> variable, when that is set. It reports whether
// --anonymous was given either way.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) (anonymousGiven bool, err error) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := "GATEWAY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := lookup(name); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %v", name, v, e)
			}
			given[f.Name] = true
		}
	})
	return given["anonymous"], err
}
