package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cli"
	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/internal/testnet"
)

// runCLI runs a client command line (args[0] is the command) as the binary
// would, with env as its environment, and returns its output and exit status.
func runCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runCLIWith(t, cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }, Now: time.Now}, args...)
	if err != nil {
		errOut.WriteString("watchdog: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), cli.ExitCode(err)
}

// runCLIWith runs a client command line in env.
func runCLIWith(t *testing.T, env cli.Env, args ...string) error {
	t.Helper()
	cmd := cli.Lookup(args[0])
	if cmd == nil {
		t.Fatalf("no client command %q", args[0])
	}
	return cmd(context.Background(), args[1:], env)
}

// mustCLI runs a command that must exit with want.
func mustCLI(t *testing.T, want int, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, nil, args...)
	if code != want {
		t.Fatalf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, want, out, errOut)
	}
	return out
}

// apiCluster is GET /v1/cluster.
type apiCluster struct {
	Leader string           `json:"leader"`
	Nodes  []cluster.Member `json:"nodes"`
	Config fsm.ConfigInfo   `json:"config"`
}

// detail is the value of "key:" in the output of watchdog service.
func detail(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// allReady waits until every running agent says it is ready.
func (c *testCluster) allReady() {
	c.t.Helper()
	waitFor(c.t, 10*time.Second, "every node ready", func() bool {
		for _, a := range c.running() {
			if a.Node.Ready() != nil {
				return false
			}
		}
		return true
	})
}

func TestCLIAgainstARealCluster(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1m}\n"))
	leader := c.leader(3)
	c.allReady()
	follower := c.follower(leader)
	all := strings.Join([]string{c.running()[0].Addr, c.running()[1].Addr, "http://" + c.running()[2].Addr + "/"}, ",")

	out := mustCLI(t, cli.ExitOK, "ping", "-addr", follower.Addr, "web-1")
	if !strings.Contains(out, "web-1: heartbeat committed") {
		t.Fatalf("ping said %q", out)
	}
	if _, ok := serviceOn(leader, "web-1"); !ok {
		t.Fatal("ping exited 0 but the leader has no web-1")
	}
	mustCLI(t, cli.ExitOK, "ping", "-addr", all, "web-2")
	c.replicated("web-1", "web-2")

	t.Run("services", func(t *testing.T) {
		out := mustCLI(t, cli.ExitOK, "services", "-addr", all)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "NEXT DEADLINE") {
			t.Fatalf("services table:\n%s", out)
		}
		for i, id := range []string{"web-1", "web-2"} {
			f := strings.Fields(lines[i+1])
			// id, status, last seen ("12ms ago"), timeout, next deadline ("in 59s")
			if len(f) != 7 || f[0] != id || f[1] != "up" || f[3] != "ago" || f[4] != "1m0s" || f[5] != "in" {
				t.Fatalf("row for %s: %q", id, lines[i+1])
			}
		}
		var v struct{ Services []struct{ ID, Status string } }
		if err := json.Unmarshal([]byte(mustCLI(t, cli.ExitOK, "services", "-json", "-addr", all)), &v); err != nil || len(v.Services) != 2 {
			t.Fatalf("services -json: %v %+v", err, v)
		}
	})

	t.Run("service", func(t *testing.T) {
		out := mustCLI(t, cli.ExitOK, "service", "web-1", "-addr", follower.Addr)
		for key, want := range map[string]string{"id": "web-1", "status": "up", "timeout": "1m0s", "actions": "log",
			"on recovered": "-", "incidents": "0"} {
			if got := detail(out, key); got != want {
				t.Fatalf("service detail has %s %q, want %q:\n%s", key, got, want, out)
			}
		}
		if !strings.HasSuffix(detail(out, "last seen"), " ago)") || !strings.HasPrefix(detail(out, "next deadline"), "in ") {
			t.Fatalf("service detail times:\n%s", out)
		}
		_, errOut, code := runCLI(t, nil, "service", "-addr", all, "nobody")
		if code != cli.ExitFailed || !strings.Contains(errOut, `no service "nobody"`) {
			t.Fatalf("unknown service: exit %d, %s", code, errOut)
		}
		if _, _, code := runCLI(t, nil, "service", "-addr", all, ".."); code != cli.ExitUsage {
			t.Fatalf("bad id: exit %d, want %d", code, cli.ExitUsage)
		}
	})

	t.Run("pause and resume through a follower", func(t *testing.T) {
		if out := mustCLI(t, cli.ExitOK, "pause", "-addr", follower.Addr, "web-2"); out != "web-2: paused\n" {
			t.Fatalf("pause said %q", out)
		}
		if s, _ := serviceOn(leader, "web-2"); s.Status != "paused" {
			t.Fatalf("pause exited 0 but the leader has %s", s.Status)
		}
		if out := mustCLI(t, cli.ExitOK, "resume", "-addr", follower.Addr, "web-2"); out != "web-2: up\n" {
			t.Fatalf("resume said %q", out)
		}
		// The detail ends with the recent events, read from the leader.
		out := mustCLI(t, cli.ExitOK, "service", "web-2", "-addr", leader.Addr)
		_, recent, ok := strings.Cut(out, "recent events")
		if !ok || !strings.Contains(recent, " paused") || !strings.Contains(recent, " resumed") {
			t.Fatalf("service detail lacks the pause and resume events:\n%s", out)
		}
		if out := mustCLI(t, cli.ExitOK, "resume", "-addr", follower.Addr, "web-2"); out != "web-2: service \"web-2\" is not paused (it is up): nothing to resume\n" {
			t.Fatalf("resume of what is not paused said %q", out)
		}
		// The same words for a missing service, whichever command meets it.
		for _, name := range []string{"pause", "resume", "service", "delete"} {
			if _, errOut, code := runCLI(t, nil, name, "-addr", all, "nobody"); code != cli.ExitFailed ||
				!strings.Contains(errOut, "watchdog: "+name+` nobody: no service "nobody" (404)`) {
				t.Fatalf("%s unknown: exit %d, %s", name, code, errOut)
			}
		}
	})

	t.Run("members and status", func(t *testing.T) {
		out := mustCLI(t, cli.ExitOK, "members", "-addr", all)
		if n := strings.Count(out, "\n"); n != 5 || !strings.Contains(out, leader.Node.ID()) {
			t.Fatalf("members:\n%s", out)
		}
		var cl apiCluster
		if err := json.Unmarshal([]byte(mustCLI(t, cli.ExitOK, "members", "-json", "-addr", all)), &cl); err != nil || cl.Leader != leader.Node.ID() {
			t.Fatalf("members -json: %v %+v", err, cl)
		}
		out = mustCLI(t, cli.ExitOK, "status", "-addr", all)
		healthy := 0
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 5 && f[2] == "yes" && f[3] == "yes" && f[4] == "yes" {
				healthy++
			}
		}
		if !strings.HasPrefix(out, "leader: "+leader.Node.ID()+"\n") || healthy != 3 {
			t.Fatalf("status of a healthy cluster:\n%s", out)
		}
	})

	t.Run("WATCHDOG_ADDR", func(t *testing.T) {
		out, errOut, code := runCLI(t, map[string]string{"WATCHDOG_ADDR": testnet.DeadAddr(t) + "," + leader.Addr}, "ping", "from-env")
		if code != cli.ExitOK || !strings.Contains(out, "via http://"+leader.Addr) {
			t.Fatalf("exit %d: %s %s", code, out, errOut)
		}
	})

	// Last: it stops a node. Status, asked of the leader, sees it at once
	// (its /readyz does not answer) and says the cluster is unhealthy.
	c.stop(follower)
	out, errOut, code := runCLI(t, nil, "status", "-addr", leader.Addr)
	if code != cli.ExitFailed || !strings.Contains(out, follower.Node.ID()) || !strings.Contains(errOut, follower.Node.ID()+" not ready") {
		t.Fatalf("status with a node down: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestCLIPingTriesEachAddressInTurn(t *testing.T) {
	c := newTestCluster(t, 1, fileConfig(t, "defaults: {timeout: 1m}\n"))
	live := c.leader(1)
	// A node that knows no leader (it waits for a second server that never
	// comes) answers 503: the client must move on, as for a dead address.
	lonely := newTestCluster(t, 0, c.file)
	noLeader := lonely.start("lonely", 2, t.TempDir())
	addrs := strings.Join([]string{testnet.DeadAddr(t), noLeader.Addr, live.Addr}, ",")
	out := mustCLI(t, cli.ExitOK, "ping", "-addr", addrs, "-timeout", "20s", "hopper")
	if !strings.Contains(out, "via http://"+live.Addr) {
		t.Fatalf("ping said %q", out)
	}
	if _, ok := serviceOn(live, "hopper"); !ok {
		t.Fatal("ping exited 0 but the heartbeat is not committed")
	}

	// Nothing can take it: the documented exit status, within the bound.
	start := time.Now()
	_, errOut, code := runCLI(t, nil, "ping", "-addr", testnet.DeadAddr(t)+","+noLeader.Addr, "-timeout", "1s", "hopper")
	if code != cli.ExitUnavailable || !strings.Contains(errOut, "cluster unavailable") {
		t.Fatalf("unreachable cluster: exit %d, want %d: %s", code, cli.ExitUnavailable, errOut)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("gave up after %s with -timeout 1s", took)
	}
}

func TestCLIPausedServiceRaisesNoIncident(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 2s}\n"))
	leader := c.leader(3)
	addr := c.running()[0].Addr
	mustCLI(t, cli.ExitOK, "ping", "-addr", addr, "maintained")
	mustCLI(t, cli.ExitOK, "pause", "-addr", addr, "maintained")
	// The control beats after the paused service, so it is due later: once
	// it is down, the paused service would have been too, were it watched.
	mustCLI(t, cli.ExitOK, "ping", "-addr", addr, "control")
	c.replicated("maintained", "control")
	waitFor(t, 15*time.Second, "the control service to go down", func() bool { return isDown(t, addr, "control") })
	out, _, _ := runCLI(t, nil, "service", "-addr", leader.Addr, "control")
	if detail(out, "incidents") != "1" || !strings.Contains(out, ", still open\n") || !regexp.MustCompile(`(?m)^  down +log +`).MatchString(out) {
		t.Fatalf("a down service's detail lacks its incident and action run:\n%s", out)
	}
	out = mustCLI(t, cli.ExitOK, "service", "-addr", leader.Addr, "maintained")
	if detail(out, "status") != "paused" || detail(out, "incidents") != "0" {
		t.Fatalf("paused service after its timeout:\n%s", out)
	}
	_, errOut, code := runCLI(t, nil, "services", "-addr", addr)
	if code != cli.ExitFailed || !strings.Contains(errOut, "1 down: control") {
		t.Fatalf("services with one down: exit %d: %s", code, errOut)
	}

	// Resumed, it is watched again: silent for its timeout, it goes down.
	mustCLI(t, cli.ExitOK, "resume", "-addr", addr, "maintained")
	waitFor(t, 15*time.Second, "the resumed service to go down", func() bool { return isDown(t, addr, "maintained") })
}

// isDown asks watchdog service whether id is down; a node that has not
// applied the service yet says "no service" (also exit 1), which is not down.
func isDown(t *testing.T, addr, id string) bool {
	out, _, code := runCLI(t, nil, "service", "-addr", addr, id)
	return detail(out, "status") == "down" && code == cli.ExitFailed
}

// replicated waits until every running agent has applied the services:
// reads are served from each node's own replica.
func (c *testCluster) replicated(ids ...string) {
	c.t.Helper()
	waitFor(c.t, 5*time.Second, "replication of "+strings.Join(ids, ", "), func() bool {
		for _, a := range c.running() {
			for _, id := range ids {
				if _, ok := serviceOn(a, id); !ok {
					return false
				}
			}
		}
		return true
	})
}
