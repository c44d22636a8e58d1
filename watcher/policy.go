package watcher

import (
	"context"
	"slices"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// decide commits the decisions of the restart policy that only the passing
// of time brings: repeats that are due, and flapping services that have been
// stable for their window. The FSM checks each against its own state when
// the entry applies, stamped with this leader's clock, so a decision that
// a heartbeat overtook changes nothing. It returns when to look again.
func (w *Watcher) decide(ctx context.Context) time.Time {
	now := w.cluster.Now()
	repeats, stable, next := w.state.Due(now)
	for chunk := range slices.Chunk(repeats, maxOpensPerEntry) {
		if _, err := w.cluster.Apply(ctx, fsm.Repeats{At: now.UnixNano(), Items: chunk}); err != nil {
			w.log.Warn("commit repeats", "services", len(chunk), "err", err)
			return now.Add(w.cfg.CheckInterval)
		}
		for _, r := range chunk {
			w.log.Warn("service still down: repeating its actions", "service", r.Service, "incident", r.Incident, "repeat", r.N)
		}
	}
	for chunk := range slices.Chunk(stable, maxOpensPerEntry) {
		if _, err := w.cluster.Apply(ctx, fsm.Stable{At: now.UnixNano(), Items: chunk}); err != nil {
			w.log.Warn("commit end of flapping", "services", len(chunk), "err", err)
			return now.Add(w.cfg.CheckInterval)
		}
		for _, s := range chunk {
			w.log.Info("service no longer flapping", "service", s.Service, "incident", s.Incident)
		}
	}
	return next
}

// attempted passes on the outcome of the n-th delivery attempt of p. A
// failure that will be retried is first committed to the service's history,
// so an operator sees every attempt, not only the outcome. That record is
// information only: if it does not commit, the delivery goes on regardless.
func (w *Watcher) attempted(ctx context.Context, p fsm.PendingAction, policy RetryPolicy, n int, err error) error {
	if err == nil || ctx.Err() != nil || !policy.retries(n, err) {
		return err
	}
	a := fsm.Attempt{At: w.cluster.Now().UnixNano(), Service: p.Service, Incident: p.Incident, Action: p.Run.Action,
		Event: p.Run.Event, Repeat: p.Run.Repeat, Attempt: n, Error: w.redact.String(err.Error())}
	if _, cerr := w.cluster.Apply(ctx, a); cerr != nil {
		w.log.Debug("commit delivery attempt", "action", p.Run.Action, "service", p.Service, "err", cerr)
	}
	return err
}

// earliest is the sooner of two wake-up times; zero means none.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
