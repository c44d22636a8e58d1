package main

import (
	"context"
	"time"
)

// handoverTimeout bounds the leadership transfer on shutdown. A transfer
// takes a round trip or two; if it cannot happen (no other voter answers),
// the node stops anyway and the others elect a leader as after a crash.
const handoverTimeout = 3 * time.Second

// Shutdown stops the agent for a restart or an upgrade (SIGTERM). A leader
// first hands leadership to another voter, while it still serves: heartbeats
// that reach it meanwhile are forwarded to the new leader, so the handover
// costs a round trip instead of an election timeout, and the new leader's
// watcher still grants its failover grace. Then it stops as Close does. It
// does not leave the Raft configuration: a restart is not a decommission
// (`watchdog leave` is).
func (a *Agent) Shutdown(ctx context.Context) error {
	if a.Node.IsLeader() {
		hctx, cancel := context.WithTimeout(ctx, handoverTimeout)
		start := time.Now()
		if err := a.Node.Handover(hctx); err != nil {
			a.log.Warn("hand leadership over before stopping", "err", err)
		} else {
			a.log.Info("handed leadership over before stopping", "took", time.Since(start).Round(time.Microsecond))
		}
		cancel()
	}
	return a.Close()
}
