package gateway

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/lesismal/nbio/logging"
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
