package watcher

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/internal/promtest"
)

// counted runs a watcher with the given actions on a real one-node cluster,
// and returns the registry its metrics are in.
func counted(t *testing.T, node *cluster.Node, f *fsm.FSM, actions map[string]Action, def fsm.Definition) *prometheus.Registry {
	t.Helper()
	w := New(Config{CheckInterval: 20 * time.Millisecond, Actions: actions, NodeID: "solo",
		Desired: &fsm.Configure{Defaults: *fsm.DefaultDefinition(), Services: map[string]fsm.Definition{"svc": def}}}, f, node)
	reg := prometheus.NewRegistry()
	if err := reg.Register(w.Collector()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, time.Now())
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return reg
}

// attempts reads one series of watchdog_action_attempts_total.
func attempts(t *testing.T, mfs promtest.Families, kind, outcome string) float64 {
	t.Helper()
	v, ok := mfs.Value("watchdog_action_attempts_total", "kind", kind, "outcome", outcome)
	if !ok {
		t.Fatalf("no series watchdog_action_attempts_total{kind=%q,outcome=%q}", kind, outcome)
	}
	return v
}

func TestMetricsCountIncidentsAndAttemptsByOutcome(t *testing.T) {
	node, f := soloCluster(t)
	flaky := newReceiver(t, reply{status: 503}, reply{status: 503}, reply{status: 200})
	refusing := newReceiver(t, reply{status: 400})
	def := fsm.Definition{Timeout: 300 * time.Millisecond, Actions: []string{"hook", "log", "refused"}}
	reg := counted(t, node, f, map[string]Action{
		"hook":    Webhook{URL: flaky.URL, Policy: fast(3)},
		"log":     Log{Log: slog.New(slog.DiscardHandler)},
		"refused": Slack{URL: Secret(refusing.URL), Policy: fast(3)},
	}, def)
	waitFor(t, 15*time.Second, "the three actions to be committed", func() bool {
		s, ok := f.Service("svc")
		return ok && s.Current() != nil && !hasPendingRun(s.Current())
	})

	mfs, err := promtest.Gather(reg)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := mfs.Value("watchdog_incidents_opened_total"); got != 1 {
		t.Errorf("incidents opened = %v, want 1", got)
	}
	for _, c := range []struct {
		kind, outcome string
		want          float64
	}{
		{"webhook", "retried", 2}, {"webhook", "done", 1}, {"webhook", "failed", 0},
		{"log", "done", 1}, {"log", "retried", 0},
		{"slack", "failed", 1}, {"slack", "retried", 0}, {"slack", "done", 0},
		{"exec", "done", 0}, {"email", "failed", 0}, {"pagerduty", "retried", 0},
	} {
		if got := attempts(t, mfs, c.kind, c.outcome); got != c.want {
			t.Errorf("attempts{kind=%s,outcome=%s} = %v, want %v", c.kind, c.outcome, got, c.want)
		}
	}
}

func hasPendingRun(inc *fsm.Incident) bool {
	for _, r := range inc.Actions {
		if r.State == fsm.ActionPending {
			return true
		}
	}
	return false
}
