package watcher

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// lateBeat is a real node on which the first settle finds a heartbeat for
// svc that arrived in time but waited behind a slow commit: it reaches the
// log only then, as it would once the commit ahead of it finishes.
type lateBeat struct {
	*cluster.Node
	f       *fsm.FSM
	settles atomic.Int64
	once    sync.Once
	late    atomic.Int64 // the stamp the late heartbeat committed
}

func (l *lateBeat) SettleHeartbeats(ctx context.Context) error {
	l.settles.Add(1)
	var err error
	l.once.Do(func() {
		if err = l.Node.Heartbeat(ctx, "svc"); err == nil {
			s, _ := l.f.Service("svc")
			l.late.Store(s.LastSeen)
		}
	})
	if err != nil {
		return err
	}
	return l.Node.SettleHeartbeats(ctx)
}

// TestAHeartbeatWaitingBehindASlowCommitVoidsTheIncident: the watcher
// settles the heartbeats a leader holds before it declares a service down,
// so one that arrived in time goes into the log first and the service is
// not declared down for it; it goes down only after that heartbeat's own
// timeout.
func TestAHeartbeatWaitingBehindASlowCommitVoidsTheIncident(t *testing.T) {
	node, f := soloCluster(t)
	l := &lateBeat{Node: node, f: f}
	const timeout = 300 * time.Millisecond
	cfg := Config{CheckInterval: 20 * time.Millisecond, NodeID: "solo",
		Desired: &fsm.Configure{Defaults: *fsm.DefaultDefinition(),
			Services: map[string]fsm.Definition{"svc": {Timeout: timeout, Actions: []string{"log"}}}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); New(cfg, f, l).Run(ctx, node.Now()) }()
	defer func() { cancel(); <-done }()

	var inc fsm.Incident
	waitFor(t, 15*time.Second, "svc to go down", func() bool {
		s, ok := f.Service("svc")
		if !ok || s.Status != fsm.StatusDown || s.Current() == nil {
			return false
		}
		inc = *s.Current()
		return true
	})
	late := l.late.Load()
	if l.settles.Load() == 0 || late == 0 {
		t.Fatalf("svc went down (incident %s, last seen %d) without the watcher settling the heartbeats first", inc.ID, inc.LastSeen)
	}
	if inc.LastSeen != late {
		t.Fatalf("svc went down for silence since %v, though a heartbeat at %v was waiting to commit",
			time.Unix(0, inc.LastSeen), time.Unix(0, late))
	}
	if d := time.Duration(inc.Opened - late); d < timeout {
		t.Fatalf("svc went down %v after its late heartbeat, before its timeout %v", d, timeout)
	}
	if s, _ := f.Service("svc"); len(s.Incidents) != 1 {
		t.Fatalf("svc has %d incidents, want the one after its late heartbeat", len(s.Incidents))
	}
}
