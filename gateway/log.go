package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lesismal/nbio/logging"

	"github.com/chatgw/gateway/gateway/limit"
)

// nbioLogger routes nbio's log lines through slog, one level down for its
// chatty start/stop lines, so a node has one log stream. Its warnings and
// errors (a recovered parse panic, with its stack) are rate-limited: a
// client must not be able to make the node write without bound.
type nbioLogger struct {
	l   *slog.Logger
	lim *logLimiter
}

func (n nbioLogger) Debug(format string, v ...interface{}) {
	n.log(slog.LevelDebug, format, v)
}
func (n nbioLogger) Info(format string, v ...interface{}) { n.log(slog.LevelDebug, format, v) }
func (n nbioLogger) Warn(format string, v ...interface{}) {
	if n.lim.allow() {
		n.log(slog.LevelWarn, format, v)
	}
}
func (n nbioLogger) Error(format string, v ...interface{}) {
	if n.lim.allow() {
		n.log(slog.LevelError, format, v)
	}
}

func (n nbioLogger) log(level slog.Level, format string, v []interface{}) {
	ctx := context.Background()
	if n.l.Enabled(ctx, level) {
		n.l.Log(ctx, level, fmt.Sprintf(format, v...), "component", "nbio")
	}
}

// nbioLogs is the limiter of nbio's lines (nbio's logger is global).
var nbioLogs logLimiter

func useLogger(l *slog.Logger) {
	nbioLogs.init(l.With("component", "nbio"), time.Now().UnixNano())
	logging.SetLogger(nbioLogger{l, &nbioLogs})
}

// Per-connection log lines (refused handshakes, abnormal closes) are
// limited to logRate a second with bursts of logBurst; past that they are
// counted, and the count is written once per flush as one line.
const (
	logRate  = 20
	logBurst = 100
)

// logLimiter rate-limits a kind of log line any client can cause, so an
// abusive client can neither fill a disk nor slow the node with logging.
type logLimiter struct {
	mu         sync.Mutex
	l          *slog.Logger
	bucket     limit.Bucket
	suppressed int64
}

func (ll *logLimiter) init(l *slog.Logger, now int64) {
	ll.mu.Lock()
	ll.l = l
	ll.bucket.Init(logBurst, now)
	ll.mu.Unlock()
}

// allow spends a line's token, or counts the line as suppressed.
func (ll *logLimiter) allow() bool {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	if ll.l == nil {
		return true
	}
	if ll.bucket.Allow(logRate, logBurst, time.Now().UnixNano()) {
		return true
	}
	ll.suppressed++
	return false
}

// line writes msg at info level if the rate allows.
func (ll *logLimiter) line(msg string, args ...any) {
	if ll.allow() {
		ll.l.Info(msg, args...)
	}
}

// flush writes how many lines were suppressed since the last flush, if any.
func (ll *logLimiter) flush() {
	ll.mu.Lock()
	n := ll.suppressed
	ll.suppressed = 0
	l := ll.l
	ll.mu.Unlock()
	if n > 0 && l != nil {
		l.Warn("log lines suppressed", "count", n, "limit_per_second", logRate)
	}
}

// redisLogger routes go-redis's own lines (dial retries while Redis is
// down) through slog at debug level: readiness and the node's warnings say
// what matters, once, instead of a line per retry.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...interface{}) {
	if r.l.Enabled(ctx, slog.LevelDebug) {
		r.l.Log(ctx, slog.LevelDebug, fmt.Sprintf(format, v...), "component", "go-redis")
	}
}
