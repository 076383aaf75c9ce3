package redistest

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// respTimeout bounds a dial and each command, so that a hung node fails
// a wait loop's attempt instead of blocking it past its deadline. It is
// longer than MIGRATE's own 5 s timeout.
const respTimeout = 10 * time.Second

// redisDo runs one command on a connection of its own to the node at addr
// (a plain client: no cluster redirection, so a test sees each node's own
// answer, MOVED included). Replies decode as go-redis's Do does: string,
// int64, nil, []any; an error reply is the error.
func redisDo(addr string, args ...string) (any, error) {
	c := redis.NewClient(&redis.Options{
		Addr: addr, MaxRetries: -1, PoolSize: 1,
		DialTimeout: 2 * time.Second, ReadTimeout: respTimeout, WriteTimeout: respTimeout,
	})
	defer c.Close()
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = s
	}
	v, err := c.Do(context.Background(), a...).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return v, err
}

// parseInfo splits the text of INFO or CLUSTER INFO into its key:value
// lines; section headers (# Server) and blank lines are skipped.
func parseInfo(text string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}
