package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
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
	args = slices.Clone(args)
	for i, a := range args {
		// hclog.Fmt values are formatted by hclog's own writers only:
		// passed on as they are, they print as "[%+v [...]]".
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				args[i] = fmt.Sprintf(format, f[1:]...)
			}
		}
	}
	s.log.Log(context.Background(), rerate(slogLevel(level), msg, args), msg, args...)
}

// rerate lowers what Raft logs as a warning or an error but is routine: a
// log entry not found because a snapshot (a restore's, or compaction)
// replaced it, which makes Raft send the follower a snapshot instead; and
// the elections of a cluster's first start. At WARN and above, a line
// should be one an operator must look at.
func rerate(level slog.Level, msg string, args []any) slog.Level {
	if level < slog.LevelWarn {
		return level
	}
	switch msg {
	case "no known peers, aborting election":
		// A node waiting to be bootstrapped or added: how every start looks.
		return slog.LevelInfo
	case "heartbeat timeout reached, starting election":
		// The first election of a new cluster knew no leader to lose.
		for i := 0; i+1 < len(args); i += 2 {
			if args[i] == "last-leader-id" && args[i+1] == "" {
				return slog.LevelInfo
			}
		}
		return level
	}
	if !strings.HasPrefix(msg, "failed to get") {
		return level
	}
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, raft.ErrLogNotFound) {
			return slog.LevelInfo
		}
	}
	return level
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
