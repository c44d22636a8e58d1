package watcher

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count what this node did as leader. They are exported only
// through Collector, into a registry the caller owns.
type metrics struct {
	incidents prometheus.Counter
	attempts  *prometheus.CounterVec
}

// The outcomes of an attempt to run an action.
const (
	outcomeDone    = "done"    // the attempt succeeded
	outcomeFailed  = "failed"  // it failed and was the last
	outcomeRetried = "retried" // it failed and another attempt followed
)

func actionKinds() []string { return []string{"exec", "log", "webhook", "slack", "email", "pagerduty"} }

func newMetrics() *metrics {
	m := &metrics{
		incidents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchdog_incidents_opened_total",
			Help: "Incidents this node committed as leader.",
		}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchdog_action_attempts_total",
			Help: "Attempts this node made to run an action, by kind of action and outcome: done, retried (failed and tried again) or failed (failed, no further attempt).",
		}, []string{"kind", "outcome"}),
	}
	// Every series exists from the start, so rate() and alerts see a
	// first failure as a change from 0, not as a new series.
	for _, k := range actionKinds() {
		for _, o := range []string{outcomeDone, outcomeFailed, outcomeRetried} {
			m.attempts.WithLabelValues(k, o)
		}
	}
	return m
}

// Collector exports what this node's watcher counted.
func (w *Watcher) Collector() prometheus.Collector {
	return collectors{w.metrics.incidents, w.metrics.attempts}
}

// collectors is several collectors exported as one.
type collectors []prometheus.Collector

// Describe implements prometheus.Collector.
func (cs collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (cs collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}

// kindOf names the kind of an action as the configuration does.
func kindOf(a Action) string {
	switch a.(type) {
	case Exec:
		return "exec"
	case Log:
		return "log"
	case Webhook:
		return "webhook"
	case Slack:
		return "slack"
	case Email:
		return "email"
	case PagerDuty:
		return "pagerduty"
	}
	return "other"
}

// attemptCounter counts the attempts of one delivery as RetryPolicy.Do
// makes them, one after the other. Whether a failed attempt was the last
// is known only when the next one starts, or when the delivery ends.
type attemptCounter struct {
	m            *metrics
	act          Action
	kind         string
	ran, lastErr bool
}

func (m *metrics) counter(act Action) *attemptCounter {
	return &attemptCounter{m: m, act: act, kind: kindOf(act)}
}

// run makes one attempt.
func (c *attemptCounter) run(ctx context.Context, ev Event) error {
	if c.lastErr {
		c.m.attempts.WithLabelValues(c.kind, outcomeRetried).Inc()
	}
	err := c.act.Run(ctx, ev)
	c.ran, c.lastErr = true, err != nil
	return err
}

// finish counts the last attempt, once the delivery is over.
func (c *attemptCounter) finish() {
	switch {
	case !c.ran:
	case c.lastErr:
		c.m.attempts.WithLabelValues(c.kind, outcomeFailed).Inc()
	default:
		c.m.attempts.WithLabelValues(c.kind, outcomeDone).Inc()
	}
}
