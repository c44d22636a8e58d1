package watcher

import (
	"context"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// The leader's watcher ends a maintenance window by itself, when it ends:
// it wakes up for it however long its check interval (an hour here), the
// service raises no incident while paused, and it is watched again with a
// full timeout from the resume.
func TestWatcherEndsAWindowOnTimeAndWatchesAgain(t *testing.T) {
	node, f := soloCluster(t)
	const timeout = 300 * time.Millisecond
	w := New(Config{CheckInterval: time.Hour, Actions: map[string]Action{"hook": &countingAction{runs: map[string]int{}}},
		Desired: &fsm.Configure{Defaults: *fsm.DefaultDefinition(),
			Services: map[string]fsm.Definition{"svc": {Timeout: timeout, Actions: []string{"hook"}}}}, NodeID: "solo"}, f, node)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, node.Now()) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, "the configuration", func() bool { _, ok := f.Service("svc"); return ok })

	until := node.Now().Add(3 * timeout)
	if _, err := node.Apply(ctx, fsm.Window{At: node.Now().UnixNano(), Services: []string{"svc"}, Paused: true, Until: until.UnixNano()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the window to end", func() bool {
		s, _ := f.Service("svc")
		return s.Status != fsm.StatusPaused
	})
	s, _ := f.Service("svc")
	if len(s.Incidents) != 0 || s.PausedUntil != 0 || s.LastSeen < until.UnixNano() {
		t.Fatalf("after the window: %+v, want no incident and watched from %s on", s, until)
	}
	resumed := s.LastSeen
	waitFor(t, 10*time.Second, "the service to time out after the window", func() bool {
		s, _ := f.Service("svc")
		return s.Status == fsm.StatusDown
	})
	s, _ = f.Service("svc")
	if opened := s.Current().Opened; opened-resumed < int64(timeout) {
		t.Fatalf("down %s after the resume, before its full timeout %s", time.Duration(opened-resumed), timeout)
	}
	events, _ := f.Events("svc", 0)
	var resumes int
	for _, e := range events {
		if e.Event == fsm.EventResumed {
			resumes++
			if e.Until != until.UnixNano() {
				t.Errorf("resumed event %+v does not name the window's end", e)
			}
		}
	}
	if resumes != 1 {
		t.Fatalf("%d resumed events, want 1: %+v", resumes, events)
	}
}
