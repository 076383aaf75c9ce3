package gateway_test

import (
	"flag"
	"net/url"
	"testing"

	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/internal/gatewaytest"
	"github.com/chatgw/gateway/internal/redistest"
	"github.com/chatgw/gateway/internal/wstest"
)

// These tests run a real node on loopback and talk to it with gorilla/websocket,
// a client library independent of nbio. They cannot run under -race: nbio's
// accept/poller hand-off trips the detector.

const waitFrame = wstest.DefaultTimeout

type node struct {
	srv *gateway.Server
	cfg gateway.Config
}

// backend is the backend the package's nodes run on. The protocol tests
// run in every mode (scripts/test.sh runs the package three times):
//
//	go test ./gateway/                   a node alone, memory store
//	go test ./gateway/ -backend=disk     a node alone, durable store in a
//	                                     directory of its own
//	go test ./gateway/ -backend=redis    each node in cluster mode on a real
//	                                     redis-server of its own
//
// Where the contract lets the modes differ, a test says so with
// clusterMode or memoryStore and the difference is in docs/protocol.md.
var backend = flag.String("backend", "memory", `"memory", "disk" (nodes alone) or "redis" (each node on a redis-server of its own)`)

// clusterMode reports whether nodes started with startNode run in cluster
// mode (-backend=redis).
func clusterMode(t *testing.T) bool {
	switch *backend {
	case "memory", "disk":
		return false
	case "redis":
		return true
	}
	t.Fatalf("-backend=%q: want memory, disk or redis", *backend)
	return false
}

// memoryStore reports whether nodes keep history in memory (-backend=memory).
func memoryStore(t *testing.T) bool { return !clusterMode(t) && *backend == "memory" }

func startNode(t *testing.T, mutate func(*gateway.Config)) *node {
	t.Helper()
	own := false // a redis-server started for this node alone
	srv, cfg := gatewaytest.Start(t, func(c *gateway.Config) {
		if mutate != nil {
			mutate(c)
		}
		if c.RedisURL == "" && clusterMode(t) {
			c.RedisURL, own = redistest.Start(t).URL(), true
		}
		if c.RedisURL == "" && c.DataDir == "" && *backend == "disk" {
			c.DataDir = t.TempDir()
		}
	})
	n := &node{srv: srv, cfg: cfg}
	if own && cfg.AdminAddr != "" {
		waitReady(t, n, 200)
	}
	return n
}

func (n *node) wsURL(query string) string {
	u := url.URL{Scheme: "ws", Host: n.srv.Addr(), Path: "/ws", RawQuery: query}
	return u.String()
}

// The test client is wstest's: frames read by a goroutine of its own, held
// past a request's reply for the next reads, in order.
type (
	client = wstest.Client
	frame  = wstest.Frame
)

var expectError = wstest.ExpectError

// dial connects as user and consumes welcome and the inbox's joined frame.
func (n *node) dial(t *testing.T, user string) *client {
	t.Helper()
	c := n.dialRaw(t, "user="+user)
	w := c.Next()
	if w.Str("type") != "welcome" || w.Str("user") != user {
		t.Fatalf("first frame %v, want welcome for %s", w, user)
	}
	j := c.Next()
	if j.Str("type") != "joined" || j.Str("room") != "@"+user {
		t.Fatalf("second frame %v, want joined @%s", j, user)
	}
	return c
}

// dialRaw connects with query and consumes nothing.
func (n *node) dialRaw(t *testing.T, query string) *client {
	t.Helper()
	return wstest.Dial(t, n.wsURL(query))
}
