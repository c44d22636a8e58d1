package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
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
	var follower *Agent
	for _, a := range c.running() {
		if a != leader {
			follower = a
		}
	}

	t.Run("success", func(t *testing.T) {
		out, errOut, code := cli(t, nil, runRun, "-addr", follower.Addr, "-id", "ok-job", "--", "/bin/sh", "-c", "echo hello; echo world")
		if code != 0 || out != "hello\nworld\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		evs := events(t, leader, "ok-job")
		start, end := evs[0], evs[len(evs)-1]
		if start.Event != fsm.EventStart || end.Event != fsm.EventSuccess || end.Note != "hello\nworld\n" ||
			start.RunID == "" || end.RunID != start.RunID {
			t.Fatalf("events = %+v, want start then success with the output and one run id", evs)
		}
		if s, _ := serviceOn(leader, "ok-job"); s.Status != fsm.StatusUp {
			t.Fatalf("ok-job is %s", s.Status)
		}
	})

	t.Run("failure", func(t *testing.T) {
		_, errOut, code := cli(t, nil, runRun, "-addr", follower.Addr, "-id", "bad-job", "--", "/bin/sh", "-c", "echo oops >&2; exit 3")
		if code != 3 {
			t.Fatalf("exit %d, want the command's 3: %s", code, errOut)
		}
		s, _ := serviceOn(leader, "bad-job")
		evs := events(t, leader, "bad-job")
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
		if _, errOut, code := cli(t, nil, runRun, "-addr", leader.Addr, "-id", "true-job", "--", "true"); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if evs := events(t, leader, "true-job"); countEvents(evs, fsm.EventSuccess) != 1 {
			t.Fatalf("events %+v", evs)
		}
	})

	t.Run("cannot start", func(t *testing.T) {
		_, _, code := cli(t, nil, runRun, "-addr", leader.Addr, "-id", "nope-job", "--", "/nonexistent/cmd")
		if code != exitCannotRun {
			t.Fatalf("exit %d, want %d", code, exitCannotRun)
		}
		if s, _ := serviceOn(leader, "nope-job"); s.Status != fsm.StatusDown {
			t.Fatalf("nope-job is %s, want down", s.Status)
		}
	})

	t.Run("long run keeps starting", func(t *testing.T) {
		// The command waits until the leader has seen two re-sent starts:
		// it runs for longer than the interval, however slow the machine.
		flag := t.TempDir() + "/go"
		done := make(chan int, 1)
		go func() {
			_, _, code := cli(t, nil, runRun, "-addr", leader.Addr, "-id", "long-job", "-every", "100ms", "--",
				"/bin/sh", "-c", "while [ ! -e "+flag+" ]; do sleep 0.05; done")
			done <- code
		}()
		waitFor(t, 15*time.Second, "re-sent starts", func() bool {
			return countEvents(events(t, leader, "long-job"), fsm.EventStart) >= 3
		})
		if err := touch(flag); err != nil {
			t.Fatal(err)
		}
		if code := <-done; code != 0 {
			t.Fatalf("exit %d", code)
		}
		evs := events(t, leader, "long-job")
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

func TestCLIRunUsage(t *testing.T) {
	for _, args := range [][]string{{"--", "true"}, {"-id", "x"}, {"-id", "..", "--", "true"}} {
		if _, errOut, code := cli(t, nil, runRun, args...); code != exitUsage {
			t.Fatalf("%v: exit %d, want %d: %s", args, code, exitUsage, errOut)
		}
	}
}

func TestTailBufferKeepsWholeLastLines(t *testing.T) {
	tb := &tailBuffer{max: 10}
	tb.Write([]byte("first line\nab\ncd\n"))
	if got := string(tb.lines()); got != "ab\ncd\n" {
		t.Fatalf("tail = %q", got)
	}
	big := &tailBuffer{max: fsm.MaxPingNote}
	big.Write([]byte(strings.Repeat("x\n", fsm.MaxPingNote)))
	if n := len(big.lines()); n > fsm.MaxPingNote || n == 0 {
		t.Fatalf("tail of %d bytes", n)
	}
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
		s, _ := serviceOn(leader, "stuck")
		return s.Status == fsm.StatusDown
	})
	evs := events(t, leader, "stuck")
	if evs[0].Event != fsm.EventStart || countEvents(evs, fsm.EventDown) != 1 || countEvents(evs, fsm.EventSuccess) != 0 {
		t.Fatalf("events %+v, want the start, then down", evs)
	}
}

// silentAddr is a loopback address that accepts connections and never
// answers, as a node cut off mid-request does.
func silentAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, conn)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// A monitoring outage must never become a job outage: without a cluster the
// command still runs, its status is the exit status, and the failed pings
// are on stderr.
func TestCLIRunWithoutClusterStillRunsTheCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"nobody listens", map[string]string{"WATCHDOG_ADDR": deadAddr(t)}, []string{"-ping-timeout", "300ms"}},
		{"never answers", map[string]string{"WATCHDOG_ADDR": silentAddr(t), "WATCHDOG_PING_TIMEOUT": "300ms"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			begin := time.Now()
			args := append(append([]string{"-id", "offline"}, tc.args...), "--", "/bin/sh", "-c", "echo job-ran; exit 7")
			out, errOut, code := cli(t, tc.env, runRun, args...)
			if out != "job-ran\n" || code != 7 {
				t.Fatalf("stdout %q, exit %d: want the command run and its status 7\nstderr:\n%s", out, code, errOut)
			}
			for _, want := range []string{"ping offline/start: cluster unavailable", "running the command anyway", "ping offline/7: cluster unavailable"} {
				if !strings.Contains(errOut, want) {
					t.Fatalf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			// Two pings, each bounded: far less than the 10s of -timeout's default.
			if took := time.Since(begin); took > 8*time.Second {
				t.Fatalf("took %s: the pings are not bounded by the ping timeout", took)
			}
		})
	}
	t.Run("success", func(t *testing.T) {
		env := map[string]string{"WATCHDOG_ADDR": deadAddr(t)}
		out, errOut, code := cli(t, env, runRun, "-id", "offline", "-ping-timeout", "200ms", "--", "true")
		if code != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
}

func TestCLIRunPingTimeoutSources(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want time.Duration
	}{
		{nil, "", defaultPingTimeout},
		{nil, "2s", 2 * time.Second},
		{[]string{"-timeout", "3s"}, "2s", 3 * time.Second},
		{[]string{"-ping-timeout", "1s", "-timeout", "3s"}, "2s", time.Second},
	} {
		f := newCLIFlags(cliEnv{stderr: io.Discard, getenv: func(string) string { return tc.env }}, "run", "", "")
		pt := f.Duration("ping-timeout", 0, "")
		if err := f.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := f.setPingTimeout(*pt); err != nil || f.timeout != tc.want {
			t.Fatalf("%v env %q: %v, %s; want %s", tc.args, tc.env, err, f.timeout, tc.want)
		}
	}
	if _, _, code := cli(t, map[string]string{"WATCHDOG_PING_TIMEOUT": "soon"}, runRun, "-id", "x", "--", "true"); code != exitUsage {
		t.Fatalf("bad $WATCHDOG_PING_TIMEOUT: exit %d, want %d", code, exitUsage)
	}
}
