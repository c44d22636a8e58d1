package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchdog-ha/watchdog/fsm"
)

// metrics are the node's counts of its heartbeat path and commits. They are
// made with the node and exported only through Collector, into a registry
// the caller owns, so several nodes in one process never collide.
//
// Everything updated per batch is a plain counter or histogram resolved at
// construction: an update is a few atomic adds, no lock, no allocation.
type metrics struct {
	committed     prometheus.Counter
	perEntry      prometheus.Histogram
	fwdBatches    prometheus.Counter
	fwdHeartbeats prometheus.Counter
	failed        *prometheus.CounterVec
	commitFailed  prometheus.Counter
	fwdFailed     prometheus.Counter
	apply         *prometheus.HistogramVec
	applyByKind   [256]prometheus.Observer // by fsm.Kind, a byte
	leaderChanges prometheus.Counter
	refused       *prometheus.CounterVec
	refusedCap    prometheus.Counter
	refusedNew    prometheus.Counter
}

// kindName labels a command kind in the apply latency histogram: its name
// in fsm's table of kinds, or "other" for a kind this build does not know.
func kindName(k fsm.Kind) string {
	if name, known := fsm.KindName(k); known {
		return name
	}
	return "other"
}

func newMetrics() *metrics {
	m := &metrics{
		committed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchdog_heartbeats_committed_total",
			Help: "Heartbeats committed in Raft entries this node proposed as leader (repeats of one service within an entry count once).",
		}),
		perEntry: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "watchdog_heartbeats_per_entry",
			Help: "Heartbeats in each committed Raft entry this node proposed (group commit batch size).",
			// Up to DefaultMaxBatch: 1, 4, 16, … 4096.
			Buckets: prometheus.ExponentialBuckets(1, 4, 7),
		}),
		fwdBatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchdog_heartbeat_batches_forwarded_total",
			Help: "Batches of heartbeats this node sent on towards the leader.",
		}),
		fwdHeartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchdog_heartbeats_forwarded_total",
			Help: "Heartbeats this node sent on towards the leader.",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchdog_heartbeat_batches_failed_total",
			Help: "Batches of heartbeats whose commit here or forward to the leader failed; their clients were told to retry.",
		}, []string{"path"}),
		apply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "watchdog_raft_apply_duration_seconds",
			Help: "Time from proposing a command on this leader to its commit on a quorum and apply here.",
			// 0.25 ms to about 8 s: a LAN quorum fsync is a few ms; the
			// top buckets show a struggling disk or a lost quorum.
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16),
		}, []string{"command"}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchdog_raft_leader_changes_total",
			Help: "Times this node learned of a new leader (itself included).",
		}),
	}
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "watchdog_heartbeats_refused_total",
		Help: "Heartbeats for new service ids this leader refused: reason max_services (the cap was reached) or unknown (auto_register is off).",
	}, []string{"reason"})
	m.refusedCap = m.refused.WithLabelValues(ReasonMaxServices)
	m.refusedNew = m.refused.WithLabelValues(ReasonUnknown)
	m.commitFailed = m.failed.WithLabelValues("commit")
	m.fwdFailed = m.failed.WithLabelValues("forward")
	for k := range m.applyByKind {
		m.applyByKind[k] = m.apply.WithLabelValues(kindName(fsm.Kind(k)))
	}
	return m
}

// collectors lists the metrics the node updates as it works.
func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.committed, m.perEntry, m.fwdBatches, m.fwdHeartbeats,
		m.failed, m.apply, m.leaderChanges, m.refused}
}

// flushFunc is what a batcher does with a batch.
type flushFunc = func(ctx context.Context, ids []string) error

// committing counts what a leader's batcher commits: once per entry, so
// the cost does not grow with the heartbeats in it.
func (m *metrics) committing(flush flushFunc) flushFunc {
	return func(ctx context.Context, ids []string) error {
		err := flush(ctx, ids)
		committed := len(ids)
		refused, isRefused := errors.AsType[*RefusedError](err) // As would allocate its target
		switch {
		case isRefused:
			committed -= len(refused.IDs)
			for _, err := range refused.IDs {
				if errors.Is(err, ErrTooManyServices) {
					m.refusedCap.Inc()
				} else {
					m.refusedNew.Inc()
				}
			}
		case err != nil:
			m.commitFailed.Inc()
			return err
		}
		if committed > 0 {
			m.committed.Add(float64(committed))
			m.perEntry.Observe(float64(committed))
		}
		return err
	}
}

// forwarding counts what a follower's batcher sends to the leader.
func (m *metrics) forwarding(flush flushFunc) flushFunc {
	return func(ctx context.Context, ids []string) error {
		m.fwdBatches.Inc()
		m.fwdHeartbeats.Add(float64(len(ids)))
		err := flush(ctx, ids)
		if _, isRefused := errors.AsType[*RefusedError](err); err != nil && !isRefused {
			m.fwdFailed.Inc()
		}
		return err
	}
}

// applied records the latency of a command committed and applied.
func (m *metrics) applied(k fsm.Kind, start time.Time) {
	m.applyByKind[k].Observe(time.Since(start).Seconds())
}

// leaderObserver counts leader changes in Raft's own goroutine: the filter
// does the counting and lets nothing through, so no channel and no
// goroutine are needed. Raft calls it only on state changes, never per entry.
func (m *metrics) leaderObserver() *raft.Observer {
	return raft.NewObserver(nil, false, func(o *raft.Observation) bool {
		if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderID != "" {
			m.leaderChanges.Inc()
		}
		return false
	})
}
