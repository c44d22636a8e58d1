package cluster

import (
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// logger is our slog logger plus the bridges the libraries need: hclog for
// Raft, a standard *log.Logger for memberlist. Both end in the same handler,
// tagged with the sub-system, so an operator reads one stream.
type logger struct{ *slog.Logger }

func (l logger) hclog(sys string) hclog.Logger {
	std := slog.NewLogLogger(l.Handler().WithAttrs([]slog.Attr{slog.String("sys", sys)}), slog.LevelInfo)
	return hclog.FromStandardLogger(std, &hclog.LoggerOptions{Name: sys, Level: hclog.Info})
}

func (l logger) std(sys string) *log.Logger {
	// memberlist logs every probe at debug; keep its chatter at our debug level.
	return slog.NewLogLogger(l.Handler().WithAttrs([]slog.Attr{slog.String("sys", sys)}), slog.LevelDebug)
}
