package gateway

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/lesismal/nbio/logging"

	"github.com/chatgw/gateway/gateway/hub"
)

// nbioLogger routes nbio's log lines through slog, one level down for its
// chatty start/stop lines, so a node has one log stream.
type nbioLogger struct{ l *slog.Logger }

func (n nbioLogger) Debug(format string, v ...interface{}) {
	n.log(slog.LevelDebug, format, v)
}
func (n nbioLogger) Info(format string, v ...interface{}) { n.log(slog.LevelDebug, format, v) }
func (n nbioLogger) Warn(format string, v ...interface{}) { n.log(slog.LevelWarn, format, v) }
func (n nbioLogger) Error(format string, v ...interface{}) {
	n.log(slog.LevelError, format, v)
}

func (n nbioLogger) log(level slog.Level, format string, v []interface{}) {
	ctx := context.Background()
	if n.l.Enabled(ctx, level) {
		n.l.Log(ctx, level, fmt.Sprintf(format, v...), "component", "nbio")
	}
}

func useLogger(l *slog.Logger) { logging.SetLogger(nbioLogger{l}) }

// closeCodeOf is the code a closed connection is logged and counted with:
// the one of the close frame sent or answered, or 1006 when the socket
// dropped without one.
func closeCodeOf(code int) int {
	if code == 0 {
		return 1006
	}
	return code
}

// closeReason explains a close code in a log line.
func closeReason(code int) string {
	switch code {
	case 0:
		return "socket dropped without a close frame"
	case 1002:
		return "protocol error"
	case closeInvalidUTF8:
		return "invalid UTF-8 in a text frame"
	case 1009:
		return "message over --max-message-bytes"
	case closeInternal:
		return "internal error in a handler"
	case closeTokenExpired:
		return "token expired"
	case hub.CloseSlowConsumer:
		return "slow consumer: outbound backlog over --outbound-max-bytes"
	case closeAbuse:
		return "repeated rate limit violations"
	}
	return "closed by the peer or the server API"
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
