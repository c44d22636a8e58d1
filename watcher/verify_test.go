package watcher

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// unconfirmed is a real node whose leadership a quorum does not confirm:
// what a leader cut off from the majority sees when it asks.
type unconfirmed struct {
	*cluster.Node
	refuse atomic.Bool
	asked  atomic.Int64
}

var errNoQuorum = errors.New("test: no quorum confirms this leader")

func (u *unconfirmed) VerifyLeader(ctx context.Context) error {
	u.asked.Add(1)
	if u.refuse.Load() {
		return errNoQuorum
	}
	return u.Node.VerifyLeader(ctx)
}

// TestNoActionWithoutConfirmedLeadership: a leader that cannot confirm its
// leadership before an action does not run it and records nothing, so the
// action stays owed; the next leadership, confirmed, runs it once.
func TestNoActionWithoutConfirmedLeadership(t *testing.T) {
	node, f := soloCluster(t)
	u := &unconfirmed{Node: node}
	u.refuse.Store(true)
	act := &countingAction{runs: map[string]int{}}
	cfg := Config{CheckInterval: 20 * time.Millisecond, Actions: map[string]Action{"count": act}, NodeID: "solo",
		Desired: &fsm.Configure{Defaults: *fsm.DefaultDefinition(),
			Services: map[string]fsm.Definition{"svc": {Timeout: 200 * time.Millisecond, Actions: []string{"count"}}}}}
	lead := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); New(cfg, f, u).Run(ctx, node.Now()) }()
		return func() { cancel(); <-done }
	}

	stop := lead()
	waitFor(t, 10*time.Second, "the incident and an attempt to confirm leadership", func() bool {
		s, ok := f.Service("svc")
		return ok && s.Status == fsm.StatusDown && u.asked.Load() > 0
	})
	// Several check intervals more: the watcher goes on looking.
	time.Sleep(10 * cfg.CheckInterval)
	stop()
	if n := runs(act); n != 0 {
		t.Fatalf("the action ran %d times without confirmed leadership", n)
	}
	pending := f.PendingActions()
	if len(pending) != 1 || pending[0].Run.State != fsm.ActionPending {
		t.Fatalf("owed actions %+v, want the down action still pending", pending)
	}

	// The next leadership is confirmed: it runs the action, once.
	u.refuse.Store(false)
	stop = lead()
	defer stop()
	waitFor(t, 10*time.Second, "the action's outcome to be committed", func() bool { return len(f.PendingActions()) == 0 })
	if n := runs(act); n != 1 {
		t.Fatalf("the action ran %d times once leadership was confirmed, want 1", n)
	}
}

func runs(c *countingAction) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.runs {
		n += k
	}
	return n
}
