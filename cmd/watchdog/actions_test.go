package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// proveWatching makes a new leader prove its watcher runs: a fresh
// service goes silent under it and gets its down action.
func proveWatching(t *testing.T, leader *Agent, actions func() []string, id string) {
	t.Helper()
	if code := heartbeat(t, leader, id); code != 200 {
		t.Fatalf("heartbeat %s: %d", id, code)
	}
	waitFor(t, 10*time.Second, id+"'s down action under the new leader", func() bool {
		return slices.ContainsFunc(actions(), func(l string) bool { return strings.HasPrefix(l, "down_"+id+"_") })
	})
}

func TestCompletedActionsNeverRunAgainAfterFailover(t *testing.T) {
	argv, actions := recorder(t)
	file := fileConfig(t, fmt.Sprintf(`
check_interval: 100ms
defaults: {timeout: 1s, actions: [record]}
actions:
  record: {exec: [%q]}
`, argv[0]))
	c := newTestCluster(t, 3, file)
	old := c.leader(3)
	heartbeat(t, old, "gone")
	waitFor(t, 10*time.Second, "gone's action to be recorded on every node", func() bool {
		for _, a := range c.running() {
			s, _ := serviceOn(a, "gone")
			if cur := s.Current(); cur == nil || cur.Actions[0].State != fsm.ActionDone {
				return false
			}
		}
		return true
	})
	c.stop(old)
	leader := c.leader(3)
	proveWatching(t, leader, actions, "probe")
	var gone []string
	for _, l := range actions() {
		if strings.HasPrefix(l, "down_gone_") {
			gone = append(gone, l)
		}
	}
	if len(gone) != 1 {
		t.Fatalf("gone's down action ran %d times across the failover: %q", len(gone), actions())
	}
}

func TestNewLeaderFinishesActionsTheOldOneLeftPending(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "runs.log")
	// The first run hangs (as if the leader died mid-restart); later runs
	// finish. The first run marks itself before it logs its start, so the
	// old leader can be stopped as soon as the start is seen: stopped
	// between the two, the new leader's run would hang instead.
	script := filepath.Join(dir, "slow.sh")
	body := fmt.Sprintf("#!/bin/sh\nif mkdir %s/first 2>/dev/null; then hang=60; else hang=0; fi\n"+
		"echo \"start $WATCHDOG_INCIDENT_ID\" >> %s\nsleep $hang\n", dir, log)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	runs := func() []string {
		b, _ := os.ReadFile(log)
		return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
	}
	file := fileConfig(t, fmt.Sprintf(`
check_interval: 100ms
actions:
  slow: {exec: [%q], timeout: 2m}
services:
  stuck: {timeout: 1s, actions: [slow]}
`, script))
	c := newTestCluster(t, 3, file)
	old := c.leader(3)
	waitFor(t, 10*time.Second, "the first run to start", func() bool { return len(runs()) == 1 })
	c.stop(old)
	leader := c.leader(3)
	var s fsm.Service
	waitFor(t, 30*time.Second, "the new leader to finish the action", func() bool {
		s, _ = serviceOn(leader, "stuck")
		return s.Current() != nil && s.Current().Actions[0].State == fsm.ActionDone
	})
	r := runs()
	if len(r) != 2 || r[0] != r[1] || r[0] != "start_"+s.Current().ID {
		t.Fatalf("runs = %q, want the same incident started twice (old leader, new leader)", r)
	}
}
