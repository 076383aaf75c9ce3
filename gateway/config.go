package gateway

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chatgw/gateway/gateway/hook"
)

// Config is a node's configuration. The zero value is not usable; start
// from DefaultConfig.
type Config struct {
	Addr               string        // public listener; /ws upgrades
	AdminAddr          string        // health and readiness ("" = none)
	NodeID             string        // announced in welcome
	Anonymous          bool          // ?user=<id> names the user, no token
	MaxMessageBytes    int           // largest client message; larger closes 1009
	Rate               float64       // frames per second per connection
	Burst              int           // token bucket size
	MaxRooms           int           // rooms per connection, inbox excluded
	Heartbeat          time.Duration // ping interval; silence > 2x closes
	HistorySize        int           // messages kept per room
	PresenceMaxMembers int           // no presence events above this many users
	OutboundMaxBytes   int64         // pending outbound bytes cap; over it 4001
	DrainTimeout       time.Duration // SIGTERM: close everything within this
	FanoutBudget       time.Duration // how long a busy node may hold a message so several share a write

	// Authentication and admission (see README "Security").
	JWTSecret        string        // HS256 secret
	JWTPublicKeyFile string        // PEM public key for RS256 / ES256
	JWTAudience      string        // required "aud" when set
	JWTIssuer        string        // required "iss" when set
	Origins          []string      // allowed Origin values; empty: any
	MaxConns         int           // connection cap; 0: none (HTTP 503 at it)
	MaxConnsPerIP    int           // sockets per client address, from accept; 0: none (HTTP 429)
	MaxPendingPerIP  int           // sockets per client address not yet upgraded; 0: none (HTTP 429)
	MaxHeaderBytes   int           // bytes a socket may send before its upgrade (HTTP 431)
	HandshakeTimeout time.Duration // a socket must complete its upgrade within this
	HandshakeRate    float64       // upgrades admitted per second (burst: one second's worth); 0: no limit
	TLSCert, TLSKey  string        // PEM files: serve wss:// on Addr
	Pprof            bool          // mount net/http/pprof on the admin listener
	NoPage           bool          // do not serve the chat page and client.js on Addr
	APIKey           string        // Bearer key of the server API on the admin listener ("" = API off)
	RedisURL         string        // redis:// or rediss://: cluster mode (broker, history, presence in Redis)
	RedisPubSub      string        // auto, classic or sharded (see cluster.Config.PubSub)
	HistoryTTL       time.Duration // a room's history expires this long after its last message (0: never)
	HistoryMaxBytes  int64         // memory store: bytes of history kept in all; idle rooms go first (0: no cap)
	DataDir          string        // durable history store's directory ("" : history in memory)
	HistorySync      string        // durable store: always, interval or none (see history.SyncMode)
	HistorySyncEvery time.Duration // durable store, sync interval: fsync this often
	HistoryRetention time.Duration // durable store: messages older than this are removed (0: kept)
	HistoryKeep      int           // durable store: messages kept per room, newest first (0: no count limit)
	HistoryMaxDisk   int64         // durable store: database bytes in use; over it the oldest messages go first (0: no cap)
	HistorySweep     time.Duration // durable store: retention runs this often
	PresenceRefresh  time.Duration // cluster mode: presence entries refreshed this often, expiring after 3x

	// Hooks to the application (docs/hooks.md, package hook).
	HookURL     string        // base URL: POST HookURL/<event> ("" = hooks off)
	HookEvents  string        // comma-separated events, read by hook.ParseEvents ("" = message)
	HookTimeout time.Duration // bounds one hook call, answer included
	HookSecret  string        // signs every hook body (X-Gateway-Signature) when set
	HookFail    string        // a decision whose call failed: "closed" (unavailable) or "open" (allowed)

	Version string // build version and commit, reported by /api/stats

	Logger *slog.Logger
}

// AuthConfigured reports whether a JWT key is set.
func (c *Config) AuthConfigured() bool { return c.JWTSecret != "" || c.JWTPublicKeyFile != "" }

// DefaultConfig returns the defaults documented in the README.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "gw-1"
	}
	return Config{
		Addr:               "127.0.0.1:8080",
		AdminAddr:          "127.0.0.1:9090",
		NodeID:             host,
		Anonymous:          true,
		MaxMessageBytes:    16384,
		Rate:               20,
		Burst:              40,
		MaxRooms:           100,
		Heartbeat:          25 * time.Second,
		HistorySize:        100,
		PresenceMaxMembers: 1000,
		OutboundMaxBytes:   1 << 20,
		DrainTimeout:       10 * time.Second,
		HandshakeTimeout:   5 * time.Second,
		FanoutBudget:       50 * time.Millisecond,
		PresenceRefresh:    5 * time.Second,
		MaxPendingPerIP:    256,
		MaxHeaderBytes:     8 << 10,
		HistoryTTL:         24 * time.Hour,
		HistoryMaxBytes:    256 << 20,
		HistorySync:        "always",
		RedisPubSub:        "auto",
		HistorySyncEvery:   100 * time.Millisecond,
		HistorySweep:       time.Minute,
		HookEvents:         "message",
		HookTimeout:        hook.DefaultTimeout,
		HookFail:           "closed",
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Addr == "":
		return fmt.Errorf("gateway: --addr is empty")
	case badAddr(c.Addr) != "":
		return fmt.Errorf("gateway: --addr %q: %s", c.Addr, badAddr(c.Addr))
	case c.AdminAddr != "" && badAddr(c.AdminAddr) != "":
		return fmt.Errorf("gateway: --admin-addr %q: %s", c.AdminAddr, badAddr(c.AdminAddr))
	case c.MaxMessageBytes < 64:
		return fmt.Errorf("gateway: --max-message-bytes %d is below 64", c.MaxMessageBytes)
	case !(c.Rate > 0) || math.IsInf(c.Rate, 1) || c.Burst < 1:
		return fmt.Errorf("gateway: --rate and --burst must be positive (got %v, %d)", c.Rate, c.Burst)
	case c.MaxRooms < 1:
		return fmt.Errorf("gateway: --max-rooms must be at least 1")
	case c.Heartbeat < 100*time.Millisecond:
		return fmt.Errorf("gateway: --heartbeat %v is below 100ms", c.Heartbeat)
	case c.HistorySize < 0:
		return fmt.Errorf("gateway: --history-size is negative")
	case c.PresenceMaxMembers < 0:
		return fmt.Errorf("gateway: --presence-max-members is negative")
	case c.OutboundMaxBytes < 0:
		return fmt.Errorf("gateway: --outbound-max-bytes is negative")
	case c.FanoutBudget < 0 || c.FanoutBudget > time.Second:
		return fmt.Errorf("gateway: --fanout-budget must be 0..1s")
	case c.DrainTimeout < 0:
		return fmt.Errorf("gateway: --drain-timeout is negative")
	case !c.Anonymous && !c.AuthConfigured():
		return fmt.Errorf("gateway: no way to identify users: set --jwt-secret or --jwt-public-key, or --anonymous")
	case c.MaxConns < 0 || c.MaxConnsPerIP < 0 || c.MaxPendingPerIP < 0:
		return fmt.Errorf("gateway: --max-conns, --max-conns-per-ip and --max-handshakes-per-ip must not be negative")
	case c.MaxHeaderBytes < 1024:
		return fmt.Errorf("gateway: --max-header-bytes %d is below 1024", c.MaxHeaderBytes)
	case c.HistoryMaxBytes < 0:
		return fmt.Errorf("gateway: --history-max-bytes is negative")
	case c.HandshakeTimeout < 100*time.Millisecond:
		return fmt.Errorf("gateway: --handshake-timeout %v is below 100ms", c.HandshakeTimeout)
	case c.PresenceRefresh < 100*time.Millisecond:
		return fmt.Errorf("gateway: --presence-refresh %v is below 100ms", c.PresenceRefresh)
	case c.HandshakeRate < 0:
		return fmt.Errorf("gateway: --handshake-rate is negative")
	case c.HistoryTTL < 0:
		return fmt.Errorf("gateway: --history-ttl is negative")
	case c.RedisPubSub != "auto" && c.RedisPubSub != "classic" && c.RedisPubSub != "sharded":
		return fmt.Errorf("gateway: --redis-pubsub %q: want auto, classic or sharded", c.RedisPubSub)
	case c.HistorySync != "always" && c.HistorySync != "interval" && c.HistorySync != "none":
		return fmt.Errorf("gateway: --history-sync %q: want always, interval or none", c.HistorySync)
	case c.HistorySyncEvery <= 0 || c.HistorySweep <= 0:
		return fmt.Errorf("gateway: --history-sync-every and --history-sweep must be positive")
	case c.HistoryRetention < 0 || c.HistoryKeep < 0 || c.HistoryMaxDisk < 0:
		return fmt.Errorf("gateway: --history-retention, --history-keep and --history-max-disk must not be negative")
	case c.DataDir != "" && c.RedisURL != "":
		return fmt.Errorf("gateway: --data-dir and --redis-url: in cluster mode Redis keeps the history; set --data-dir=\"\"")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return fmt.Errorf("gateway: --tls-cert and --tls-key go together")
	}
	return c.validateHooks()
}

// validateHooks checks the --hook-* settings. Their values are checked even
// with no --hook-url, so that a typo does not wait for the day the URL is
// set to be found.
func (c *Config) validateHooks() error {
	_, err := hook.ParseEvents(c.HookEvents)
	switch {
	case err != nil:
		return fmt.Errorf("gateway: --hook-events %q: %s", c.HookEvents, strings.TrimPrefix(err.Error(), "hook: "))
	case c.HookTimeout <= 0:
		return fmt.Errorf("gateway: --hook-timeout %v must be positive", c.HookTimeout)
	case c.HookFail != "closed" && c.HookFail != "open":
		return fmt.Errorf("gateway: --hook-fail %q: want closed or open", c.HookFail)
	case c.HookURL == "":
		return nil
	}
	hc := hook.Config{URL: c.HookURL}
	if err := hc.Validate(); err != nil {
		return fmt.Errorf("gateway: --hook-url: %s", strings.TrimPrefix(err.Error(), "hook: "))
	}
	return nil
}

// badAddr says what is wrong with a listen address, or "" when it has the
// host:port form net.Listen takes.
func badAddr(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "want host:port, e.g. 127.0.0.1:8080 or :8080"
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return "port " + strconv.Quote(port) + " is not a port number"
	}
	return ""
}
