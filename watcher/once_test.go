package watcher

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// countingAction counts its runs per incident and event.
type countingAction struct {
	mu   sync.Mutex
	runs map[string]int
}

func (c *countingAction) Run(_ context.Context, ev Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs[ev.Incident+"/"+string(ev.Kind)]++
	return nil
}

// TestEveryActionRunsOnceWhenManyFinishTogether is the regression test of a
// double run found by the chaos suite: while the watcher blocked committing
// one outcome, others finished and left its list of pending actions stale,
// and it started them again.
func TestEveryActionRunsOnceWhenManyFinishTogether(t *testing.T) {
	node, f := soloCluster(t)
	act := &countingAction{runs: map[string]int{}}
	const n = 300
	services := map[string]fsm.Definition{}
	for i := range n {
		services[fmt.Sprintf("svc-%03d", i)] = fsm.Definition{Timeout: 200 * time.Millisecond, Actions: []string{"count"}, OnRecovered: []string{"count"}}
	}
	w := New(Config{CheckInterval: 10 * time.Millisecond, Actions: map[string]Action{"count": act},
		Desired: &fsm.Configure{Defaults: *fsm.DefaultDefinition(), Services: services}, NodeID: "solo"}, f, node)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, time.Now()) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 30*time.Second, "every down action to be recorded", func() bool {
		return f.Len() == n && len(f.PendingActions()) == 0 && allDown(f)
	})
	ids := make([]string, 0, n)
	for id := range services {
		ids = append(ids, id)
	}
	if _, err := node.Apply(ctx, fsm.Heartbeat{At: time.Now().UnixNano(), IDs: ids}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "every recovered action to be recorded", func() bool { return len(f.PendingActions()) == 0 })
	act.mu.Lock()
	defer act.mu.Unlock()
	// Each service recovers exactly once; on a loaded machine its 200 ms
	// timeout may run out again before the last outcome is recorded, which
	// opens a second, legitimate incident with a down run of its own.
	recovered, down := 0, 0
	for k := range act.runs {
		switch {
		case strings.HasSuffix(k, "/recovered"):
			recovered++
		case strings.HasSuffix(k, "/down"):
			down++
		}
	}
	if recovered != n || down < n {
		t.Errorf("%d distinct recovered and %d distinct down runs, want %d and at least %d", recovered, down, n, n)
	}
	for k, c := range act.runs {
		if c != 1 {
			t.Errorf("%s ran %d times", k, c)
		}
	}
}
