package cluster

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// logger is our slog logger plus the bridges the libraries need: hclog for
// Raft, a standard *log.Logger for memberlist. Both end in the same handler,
// tagged with the sub-system, so an operator reads one stream.
type logger struct{ *slog.Logger }

// hclog returns an hclog.Logger whose records reach slog with their own
// level and key/value pairs, not as preformatted text.
func (l logger) hclog(sys string) hclog.Logger {
	level := hclog.Info
	if l.Enabled(context.Background(), slog.LevelDebug) {
		level = hclog.Debug
	}
	il := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: sys, Level: level, Output: io.Discard})
	il.RegisterSink(slogSink{l.With("sys", sys)})
	return il
}

// slogSink receives every record the intercept logger emits.
type slogSink struct{ log *slog.Logger }

func (s slogSink) Accept(_ string, level hclog.Level, msg string, args ...any) {
	s.log.Log(context.Background(), slogLevel(level), msg, args...)
}

func slogLevel(l hclog.Level) slog.Level {
	switch {
	case l <= hclog.Debug:
		return slog.LevelDebug
	case l == hclog.Info:
		return slog.LevelInfo
	case l == hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (l logger) std(sys string) *log.Logger {
	// memberlist prefixes its own "[DEBUG]"/"[WARN]"; its chatter is all
	// probes and pushes, so it goes out at our debug level.
	return slog.NewLogLogger(l.Handler().WithAttrs([]slog.Attr{slog.String("sys", sys)}), slog.LevelDebug)
}
