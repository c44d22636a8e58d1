package watcher

import (
	"context"
	"slices"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// endWindows resumes the services whose maintenance window has ended, on
// the leader's timeline (Cluster.Now), and returns when the next one ends.
// The FSM resumes each only if its window is still the one seen here, so a
// window moved or lifted meanwhile is left alone, and a retry after a
// failover resumes nothing twice.
func (w *Watcher) endWindows(ctx context.Context) time.Time {
	now := w.cluster.Now()
	due, next := w.state.WindowsDue(now)
	for chunk := range slices.Chunk(due, maxOpensPerEntry) {
		if _, err := w.cluster.Apply(ctx, fsm.WindowEnd{At: now.UnixNano(), Items: chunk}); err != nil {
			w.log.Warn("commit the end of maintenance windows", "services", len(chunk), "err", err)
			return now.Add(w.cfg.CheckInterval)
		}
		for _, d := range chunk {
			w.log.Info("maintenance window ended: service resumed", "service", d.Service,
				"until", time.Unix(0, d.Until).UTC().Format(time.RFC3339))
		}
	}
	return next
}
