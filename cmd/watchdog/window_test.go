package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cli"
	"github.com/watchdog-ha/watchdog/fsm"
)

// windowEvents is a service's paused and resumed events.
func windowEvents(a *Agent, id string) []fsm.Record {
	events, _ := a.FSM.Events(id, 0)
	var out []fsm.Record
	for _, e := range events {
		if e.Event == fsm.EventPaused || e.Event == fsm.EventResumed {
			out = append(out, e)
		}
	}
	return out
}

// checkWindowEnded checks that id's window ended by itself, once, and that
// the service then had a full timeout: no incident during the window, and
// none within timeout of the resume.
func checkWindowEnded(t *testing.T, a *Agent, id string, timeout time.Duration) {
	t.Helper()
	ev := windowEvents(a, id)
	n := len(ev)
	if n < 2 || ev[n-2].Event != fsm.EventPaused || ev[n-1].Event != fsm.EventResumed ||
		ev[n-1].Until == 0 || ev[n-1].Until != ev[n-2].Until || ev[n-1].At < ev[n-1].Until {
		t.Fatalf("%s on %s: the window's events are %+v, want paused then resumed at its end", id, a.Node.ID(), ev)
	}
	s := mustService(t, a, id)
	for _, inc := range s.Incidents {
		if inc.Opened < ev[n-1].At+int64(timeout) {
			t.Fatalf("%s: incident %s opened at %d, within its timeout of the resume at %d", id, inc.ID, inc.Opened, ev[n-1].At)
		}
	}
}

// A maintenance window outlives the leader that opened it: paused through
// a follower with the CLI, by id and by tag, the leader then killed, the
// new leader resumes every service when its window ends, once, with a full
// timeout from then, and every replica says the same.
func TestMaintenanceWindowEndsThroughAFailover(t *testing.T) {
	const timeout = 2 * time.Second
	c := newTestCluster(t, 3, fileConfig(t, "check_interval: 100ms\ndefaults: {timeout: 1h}\n"+
		"services:\n  db: {timeout: 2s, tags: [maint]}\n  cache: {timeout: 2s, tags: [maint]}\n  web: {timeout: 2s}\n"))
	leader := c.leader(3)
	var follower *Agent
	for _, a := range c.running() {
		if a != leader {
			follower = a
		}
	}
	for _, id := range []string{"db", "cache", "web"} {
		heartbeat(t, follower, id)
	}
	out := mustCLI(t, cli.ExitOK, "pause", "-addr", follower.Addr, "-tag", "maint", "-for", "4s")
	if !strings.HasPrefix(out, "tag maint: paused cache, db until ") || !strings.HasSuffix(out, "(0 unchanged)\n") {
		t.Fatalf("pause -tag said %q", out)
	}
	until := time.Now().Add(5 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
	out = mustCLI(t, cli.ExitOK, "pause", "web", "-addr", follower.Addr, "-until", until.Format(time.RFC3339))
	if out != "web: paused until "+until.Format(time.RFC3339)+"\n" {
		t.Fatalf("pause -until said %q", out)
	}
	c.stop(leader)
	newLeader := c.leader(3) // the configuration still counts the stopped voter
	if newLeader == leader {
		t.Fatal("the old leader still leads")
	}
	for _, id := range []string{"db", "cache", "web"} {
		waitFor(t, 30*time.Second, id+" resumed by the new leader", func() bool {
			s := mustService(t, newLeader, id)
			return s.Status != fsm.StatusPaused
		})
	}
	// db and cache are silent: they go down, a full timeout after the end.
	for _, id := range []string{"db", "cache"} {
		waitFor(t, 30*time.Second, id+" down after its window", func() bool { return mustService(t, newLeader, id).Status == fsm.StatusDown })
	}
	for _, a := range c.running() {
		waitFor(t, 10*time.Second, "the replica "+a.Node.ID()+" to agree", func() bool {
			return mustService(t, a, "db").Status == fsm.StatusDown && mustService(t, a, "cache").Status == fsm.StatusDown &&
				mustService(t, a, "web").Status != fsm.StatusPaused
		})
		for _, id := range []string{"db", "cache", "web"} {
			checkWindowEnded(t, a, id, timeout)
		}
	}
	if got := windowEvents(newLeader, "web"); got[len(got)-1].Until != until.UnixNano() {
		t.Fatalf("web's window ended at %d, asked for %s", got[len(got)-1].Until, until)
	}
}

// A window is in a backup: restored after it was lifted by hand, it is
// back, and the leader ends it when it ends.
func TestMaintenanceWindowSurvivesARestore(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "check_interval: 100ms\ndefaults: {timeout: 1h}\n"))
	leader := c.leader(3)
	heartbeat(t, leader, "db")
	mustCLI(t, cli.ExitOK, "pause", "db", "-for", "5s", "-addr", leader.Addr)
	path := filepath.Join(t.TempDir(), "backup.snap")
	mustCLI(t, cli.ExitOK, "snapshot", "save", "-addr", leader.Addr, path)
	windowEnd := mustService(t, leader, "db").PausedUntil
	if out := mustCLI(t, cli.ExitOK, "resume", "db", "-addr", leader.Addr); out != "db: up\n" {
		t.Fatalf("resume said %q", out)
	}
	mustCLI(t, cli.ExitOK, "snapshot", "restore", path, "-addr", leader.Addr)
	for _, a := range c.running() {
		waitFor(t, 10*time.Second, a.Node.ID()+" paused again by the restore", func() bool {
			s := mustService(t, a, "db")
			return s.Status == fsm.StatusPaused && s.PausedUntil == windowEnd
		})
	}
	waitFor(t, 30*time.Second, "the restored window to end", func() bool {
		return mustService(t, c.leader(3), "db").Status != fsm.StatusPaused
	})
	ev := windowEvents(c.leader(3), "db")
	if last := ev[len(ev)-1]; last.Event != fsm.EventResumed || last.Until != windowEnd {
		t.Fatalf("db's last window event %+v, want resumed at the restored end %d", last, windowEnd)
	}
}
