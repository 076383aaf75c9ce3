package cluster

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Open starts a node on the Redis of url (see newClient) with cfg; the
// node owns the client and closes it with itself.
func Open(url string, cfg Config) (*Node, error) {
	c, isCluster, err := newClient(url)
	if err != nil {
		return nil, err
	}
	cfg.Client, cfg.Cluster = c, isCluster
	switch cfg.PubSub {
	case "", "auto":
		cfg.Sharded = isCluster
	case "classic":
		cfg.Sharded = false
	case "sharded":
		if !isCluster {
			_ = c.Close()
			return nil, fmt.Errorf("--redis-pubsub=sharded needs a Redis Cluster (a --redis-url with ?addr= seeds)")
		}
		cfg.Sharded = true
	default:
		_ = c.Close()
		return nil, fmt.Errorf("--redis-pubsub %q: want auto, classic or sharded", cfg.PubSub)
	}
	n := New(cfg, nil)
	n.owned = c
	return n, nil
}

// newClient makes the UniversalClient of a --redis-url: redis:// or
// rediss:// (TLS) with user, password and /db. With ?master_name=NAME the
// host (and any ?addr=host:port) are Sentinels of that master; with only
// ?addr= parameters, more seed addresses of a Redis Cluster. The node's
// own deadlines (a publish batch 3 s, a health ping 1 s) bound its calls:
// go-redis ignores a context's deadline unless told otherwise.
func newClient(url string) (redis.UniversalClient, bool, error) {
	if strings.Contains(url, "master_name=") {
		o, err := redis.ParseFailoverURL(url)
		if err != nil {
			return nil, false, fmt.Errorf("--redis-url: %w", err)
		}
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), false, nil
	}
	if strings.Contains(url, "addr=") {
		o, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, false, fmt.Errorf("--redis-url: %w", err)
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), true, nil
	}
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, false, fmt.Errorf("--redis-url: %w", err)
	}
	if o.TLSConfig != nil {
		o.TLSConfig.MinVersion = tls.VersionTLS12
	}
	o.ContextTimeoutEnabled = true
	return redis.NewClient(o), false, nil
}
