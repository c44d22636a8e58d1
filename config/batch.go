package config

import (
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
)

// Bounds of group commit's settings. A batch beyond maxBatchSize ids makes
// a Raft entry of megabytes, which every follower must take in one piece; a
// window beyond maxBatchWindow is surely "10ms" typed as "10s": it would be
// added to every heartbeat's latency under load.
const (
	maxBatchSize   = 16384
	maxBatchWindow = 100 * time.Millisecond
)

// checkBatching reads batch_size (the most heartbeats in one Raft entry or
// one forwarded batch) and batch_window (the least time between the starts
// of two entries while heartbeats keep coming; a heartbeat on an idle node
// is committed at once whatever it is; 0 starts every entry as soon as the
// one before is done, the lowest latency and the most entries).
func (p *parser) checkBatching(cfg *FileConfig) {
	if !p.set("batch_size") {
		cfg.BatchSize = cluster.DefaultMaxBatch
	} else if n := cfg.BatchSize; n < 1 || n > maxBatchSize {
		p.addf(p.line("batch_size"), "batch_size", "must be 1 to %d, got %d", maxBatchSize, n)
	}
	if !p.set("batch_window") {
		cfg.BatchWindow = Duration(cluster.DefaultBatchWindow)
		return
	}
	switch w := cfg.BatchWindow; {
	case w < 0:
		p.addf(p.line("batch_window"), "batch_window", "must not be negative, got %s", w)
	case w > Duration(maxBatchWindow):
		p.addf(p.line("batch_window"), "batch_window", "%s is too long: must be at most %s (or 0)",
			w, Duration(maxBatchWindow))
	}
}
