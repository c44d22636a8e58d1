package main

import (
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// events is id's history as the leader has it.
func events(t *testing.T, a *Agent, id string) []fsm.Record {
	t.Helper()
	evs, _ := a.FSM.Events(id, 0)
	return evs
}

// synced returns a once it has applied all that the current leader had
// committed: then a read of its state shows every write the CLI was
// answered for, even if leadership moved under load and a is a follower now.
func (c *testCluster) synced(t testing.TB, a *Agent) *Agent {
	t.Helper()
	var want uint64
	waitFor(t, 20*time.Second, "a leader", func() bool {
		l := c.currentLeader()
		if l != nil {
			want = l.Node.RaftStatus().CommitIndex
		}
		return l != nil
	})
	waitFor(t, 20*time.Second, "the node to apply what the leader committed", func() bool {
		return a.Node.RaftStatus().AppliedIndex >= want
	})
	return a
}

func countEvents(evs []fsm.Record, ev fsm.Event) int {
	n := 0
	for _, e := range evs {
		if e.Event == ev {
			n++
		}
	}
	return n
}

func TestCLIRunReportsTheCommand(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1m}\n"))
	leader := c.leader(3)
	c.allReady()
	follower := c.follower(leader)

	t.Run("success", func(t *testing.T) {
		out, errOut, code := runCLI(t, nil, "run", "-addr", follower.Addr, "-id", "ok-job", "--", "/bin/sh", "-c", "echo hello; echo world")
		if code != 0 || out != "hello\nworld\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		evs := events(t, c.synced(t, leader), "ok-job")
		start, end := evs[0], evs[len(evs)-1]
		if start.Event != fsm.EventStart || end.Event != fsm.EventSuccess || end.Note != "hello\nworld\n" ||
			start.RunID == "" || end.RunID != start.RunID {
			t.Fatalf("events = %+v, want start then success with the output and one run id", evs)
		}
		if s, _ := serviceOn(c.synced(t, leader), "ok-job"); s.Status != fsm.StatusUp {
			t.Fatalf("ok-job is %s", s.Status)
		}
	})

	t.Run("failure", func(t *testing.T) {
		_, errOut, code := runCLI(t, nil, "run", "-addr", follower.Addr, "-id", "bad-job", "--", "/bin/sh", "-c", "echo oops >&2; exit 3")
		if code != 3 {
			t.Fatalf("exit %d, want the command's 3: %s", code, errOut)
		}
		s, _ := serviceOn(c.synced(t, leader), "bad-job")
		evs := events(t, c.synced(t, leader), "bad-job")
		// The fail, then down (and the log action's delivery, once it ran).
		var fail fsm.Record
		if i := slices.IndexFunc(evs, func(r fsm.Record) bool { return r.Event == fsm.EventFail }); i >= 0 {
			fail = evs[i]
		}
		if s.Status != fsm.StatusDown || fail.Event != fsm.EventFail || fail.ExitStatus != 3 || fail.Note != "oops\n" {
			t.Fatalf("bad-job %s, events %+v: want down at once with exit 3 and its stderr", s.Status, evs)
		}
	})

	t.Run("true", func(t *testing.T) {
		if _, errOut, code := runCLI(t, nil, "run", "-addr", leader.Addr, "-id", "true-job", "--", "true"); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if evs := events(t, c.synced(t, leader), "true-job"); countEvents(evs, fsm.EventSuccess) != 1 {
			t.Fatalf("events %+v", evs)
		}
	})

	t.Run("cannot start", func(t *testing.T) {
		_, _, code := runCLI(t, nil, "run", "-addr", leader.Addr, "-id", "nope-job", "--", "/nonexistent/cmd")
		if code != 127 { // the shell's status for a command that could not start
			t.Fatalf("exit %d, want 127", code)
		}
		if s, _ := serviceOn(c.synced(t, leader), "nope-job"); s.Status != fsm.StatusDown {
			t.Fatalf("nope-job is %s, want down", s.Status)
		}
	})

	t.Run("long run keeps starting", func(t *testing.T) {
		// The command waits until the leader has seen two re-sent starts:
		// it runs for longer than the interval, however slow the machine.
		flag := t.TempDir() + "/go"
		done := make(chan int, 1)
		go func() {
			_, _, code := runCLI(t, nil, "run", "-addr", leader.Addr, "-id", "long-job", "-every", "100ms", "--",
				"/bin/sh", "-c", "while [ ! -e "+flag+" ]; do sleep 0.05; done")
			done <- code
		}()
		waitFor(t, 15*time.Second, "re-sent starts", func() bool {
			return countEvents(events(t, c.synced(t, leader), "long-job"), fsm.EventStart) >= 3
		})
		if err := touch(flag); err != nil {
			t.Fatal(err)
		}
		if code := <-done; code != 0 {
			t.Fatalf("exit %d", code)
		}
		evs := events(t, c.synced(t, leader), "long-job")
		if evs[len(evs)-1].Event != fsm.EventSuccess {
			t.Fatalf("events %+v", evs)
		}
		for _, e := range evs {
			if e.RunID != evs[0].RunID {
				t.Fatalf("run ids differ: %+v", evs)
			}
		}
	})
}

func touch(path string) error { return os.WriteFile(path, nil, 0o600) }

func TestPingStartWithoutSuccessIsAnIncident(t *testing.T) {
	c := newTestCluster(t, 1, fileConfig(t, "defaults: {timeout: 1s}\n"))
	leader := c.leader(1)
	c.allReady()
	resp, err := http.Post("http://"+leader.Addr+"/ping/stuck/start?create=1&rid=3f0d1c3e-8a7b-4c2d-9e1f-0a1b2c3d4e5f", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	waitFor(t, 15*time.Second, "the started run to go down", func() bool {
		s, _ := serviceOn(c.synced(t, leader), "stuck")
		return s.Status == fsm.StatusDown
	})
	evs := events(t, c.synced(t, leader), "stuck")
	if evs[0].Event != fsm.EventStart || countEvents(evs, fsm.EventDown) != 1 || countEvents(evs, fsm.EventSuccess) != 0 {
		t.Fatalf("events %+v, want the start, then down", evs)
	}
}
