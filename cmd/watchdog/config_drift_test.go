package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cli"
	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/config"
	"github.com/watchdog-ha/watchdog/fsm"
)

// driftConfig defines a service whose action only the file defines: the
// committed configuration names "hook", and a node without the file lacks it.
func driftConfig(t *testing.T, argv []string, timeout string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf(`
actions:
  hook:
    exec: [%s]
services:
  worker:
    timeout: %s
    actions: [hook]
`, strings.Join(q, ", "), timeout)
}

// restartAs stops a and starts it again in place (same id, data dir and
// addresses) with file, or without a config file when file is nil. Its log
// goes to the returned buffer.
func (c *testCluster) restartAs(a *Agent, file *config.FileConfig) (*Agent, *syncBuffer) {
	c.t.Helper()
	id, dataDir, raftAddr, gossipAddr, httpAddr := a.Node.ID(), a.dataDir, a.Node.RaftAddr(), a.Node.GossipAddr(), a.Addr
	c.stop(a)
	cfg := &config.AgentConfig{NodeID: id, HTTPAddr: httpAddr, RaftAddr: raftAddr, GossipAddr: gossipAddr, DataDir: dataDir, File: file}
	if file == nil {
		cfg.NoConfigFile = true
		var err error
		if cfg.File, err = config.ParseConfig(nil, "defaults"); err != nil {
			c.t.Fatal(err)
		}
	}
	if running := c.running(); len(running) > 0 {
		cfg.Join = []string{running[0].Node.GossipAddr()}
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	fast := func(cc *cluster.Config) {
		cc.ReconcileInterval = 300 * time.Millisecond
		cc.StatusInterval = 250 * time.Millisecond
	}
	b, err := StartAgent(cfg, log, fast)
	if err != nil {
		c.t.Fatalf("restart %s: %v", id, err)
	}
	c.mu.Lock()
	c.agents = append(c.agents, b)
	c.mu.Unlock()
	return b, logs
}

// committedEverywhere waits until every running node has applied info's
// generation and checks they all agree on it, and on worker's definition.
func committedEverywhere(t *testing.T, c *testCluster, want fsm.ConfigInfo, timeout time.Duration, actions []string) {
	t.Helper()
	waitFor(t, 10*time.Second, "every node to apply the configuration", func() bool {
		for _, a := range c.running() {
			if a.FSM.ConfigGeneration() < want.Generation {
				return false
			}
		}
		return true
	})
	for _, a := range c.running() {
		if got := a.FSM.ConfigInfo(); got.Generation != want.Generation || got.Hash != want.Hash {
			t.Errorf("%s: committed configuration %+v, want %+v", a.Node.ID(), got, want)
		}
		w, ok := a.FSM.Service("worker")
		if !ok || w.Source != fsm.SourceConfig || w.Def.Timeout != timeout || !slices.Equal(w.Def.Actions, actions) {
			t.Errorf("%s: worker = %+v (def %+v), want timeout %s and actions %v from the config", a.Node.ID(), w, w.Def, timeout, actions)
		}
	}
}

// leadThenWatch transfers leadership to target and waits until the
// target's log says it established it.
func leadThenWatch(t *testing.T, c *testCluster, target *Agent, logs *syncBuffer) {
	t.Helper()
	waitFor(t, 15*time.Second, target.Node.ID()+" to be a caught-up voter", func() bool {
		l := c.leader(3)
		for _, m := range l.Node.Members() {
			if m.ID == target.Node.ID() && m.Voter && m.Lag != nil && *m.Lag == 0 && m.StatusError == "" {
				return true
			}
		}
		return false
	})
	waitFor(t, 15*time.Second, target.Node.ID()+" to establish leadership", func() bool {
		if strings.Contains(logs.String(), "leadership established") {
			return true
		}
		for _, a := range c.running() {
			if a.Node.IsLeader() && a != target {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				err := a.Node.TransferLeadership(ctx, target.Node.ID())
				cancel()
				if err != nil {
					t.Logf("transfer to %s: %v", target.Node.ID(), err)
				}
			}
		}
		return strings.Contains(logs.String(), "leadership established")
	})
}

// The drift test of issue 15.2: a node restarted without its config file,
// then made leader, must not replace the committed configuration; it must
// say that it lacks an action before it leads, and give leadership to a
// node that has it. Once it has, the action runs when the service is down.
func TestNodeRestartedWithoutItsFileLeadsWithoutReplacingTheConfig(t *testing.T) {
	argv, ran := recorder(t)
	file := fileConfig(t, driftConfig(t, argv, "1s"))
	c := newTestCluster(t, 3, file)
	leader := c.leader(3)
	waitFor(t, 10*time.Second, "the first configuration", func() bool { return leader.FSM.ConfigGeneration() == 1 })
	committed := leader.FSM.ConfigInfo()
	if committed.Hash != fsm.ConfigHash(*file.Desired()) || !slices.Equal(committed.Actions, []string{"hook", "log"}) {
		t.Fatalf("committed %+v", committed)
	}

	var follower *Agent
	for _, a := range c.running() {
		if a != leader {
			follower = a
		}
	}
	bare, logs := c.restartAs(follower, nil)
	committedEverywhere(t, c, committed, time.Second, []string{"hook"})

	// Before it leads: drift reported, not ready, and a warning.
	waitFor(t, 10*time.Second, "the bare node to report its drift", func() bool {
		st := bare.Node.ConfigStatus()
		return st != nil && st.Drift && slices.Equal(st.Missing, []string{"hook"}) && !st.File
	})
	resp, err := http.Get(bare.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(ready.Error, "hook") {
		t.Fatalf("/readyz of the bare node: %d %q, want 503 naming hook", resp.StatusCode, ready.Error)
	}
	waitFor(t, 5*time.Second, "a warning naming the missing action", func() bool {
		return strings.Contains(logs.String(), "level=WARN msg=\"config file lacks actions") &&
			strings.Contains(logs.String(), "missing_actions=hook")
	})
	var view struct {
		Config fsm.ConfigInfo
		Nodes  []cluster.Member
	}
	waitFor(t, 10*time.Second, "/v1/cluster to show the drift", func() bool {
		getJSON(t, leader.URL()+"/v1/cluster", &view)
		for _, m := range view.Nodes {
			if m.ID == bare.Node.ID() {
				return m.Config != nil && m.Config.Drift && !m.Config.File && slices.Equal(m.Config.Missing, []string{"hook"})
			}
		}
		return false
	})
	if view.Config.Hash != committed.Hash || view.Config.Generation != 1 {
		t.Fatalf("/v1/cluster config %+v, want %+v", view.Config, committed)
	}
	out := mustCLI(t, cli.ExitOK, "members", "-addr", leader.Addr)
	t.Logf("watchdog members with a node restarted without its file:\n%s", out)
	if !strings.Contains(out, "none DRIFT, lacks hook") || !strings.Contains(out, committed.Hash+"\n") {
		t.Fatalf("members does not show the drift:\n%s", out)
	}

	// Made leader, it commits nothing and hands leadership over.
	leadThenWatch(t, c, bare, logs)
	waitFor(t, 10*time.Second, "the bare node to hand leadership over", func() bool {
		l := c.leader(3)
		return l != bare && strings.Contains(logs.String(), "hand leadership over")
	})
	committedEverywhere(t, c, committed, time.Second, []string{"hook"})
	if strings.Contains(logs.String(), "committed this node's config file") {
		t.Fatalf("the bare node committed its configuration:\n%s", logs)
	}

	// The configuration still works: worker comes back, goes down again,
	// and hook runs for it.
	downs := func() int {
		return len(slices.DeleteFunc(ran(), func(l string) bool { return !strings.HasPrefix(l, "down_worker") }))
	}
	before := downs()
	heartbeat(t, c.leader(3), "worker")
	waitFor(t, 15*time.Second, "the hook to run for worker", func() bool { return downs() > before })

	// A node that lacked an action before does not block another change;
	// the apply warns about it.
	changed := writeConfigFile(t, "changed.yaml", driftConfig(t, argv, "2s"))
	_, errOut, code := runCLI(t, nil, "config", "apply", "-addr", strings.Join(c.addrs(), ","), changed)
	if code != cli.ExitOK || !strings.Contains(errOut, "warning: "+bare.Node.ID()+"'s config file lacks hook") {
		t.Fatalf("apply with a node that already lacked hook: exit %d %s", code, errOut)
	}
}

// A node whose file differs (another timeout) but defines every action
// leads, and stays leader, on the committed configuration.
func TestNodeWithAnotherFileLeadsOnTheCommittedConfig(t *testing.T) {
	argv, _ := recorder(t)
	file := fileConfig(t, driftConfig(t, argv, "5s"))
	c := newTestCluster(t, 3, file)
	leader := c.leader(3)
	waitFor(t, 10*time.Second, "the first configuration", func() bool { return leader.FSM.ConfigGeneration() == 1 })
	committed := leader.FSM.ConfigInfo()

	var follower *Agent
	for _, a := range c.running() {
		if a != leader {
			follower = a
		}
	}
	other := fileConfig(t, driftConfig(t, argv, "9s"))
	drifted, logs := c.restartAs(follower, other)
	leadThenWatch(t, c, drifted, logs)
	if l := c.leader(3); l != drifted {
		t.Fatalf("leader is %s, want the drifted node %s to stay leader", l.Node.ID(), drifted.Node.ID())
	}
	committedEverywhere(t, c, committed, 5*time.Second, []string{"hook"})
	st := drifted.Node.ConfigStatus()
	if st == nil || !st.Drift || len(st.Missing) != 0 || st.Hash != fsm.ConfigHash(*other.Desired()) || st.CommittedHash != committed.Hash {
		t.Fatalf("drifted node's status %+v", st)
	}
	if err := drifted.Node.Ready(); err != nil {
		t.Fatalf("a drifted node with every action should be ready: %v", err)
	}
	waitFor(t, 5*time.Second, "a note of the drift in the log", func() bool {
		return strings.Contains(logs.String(), "config file differs from the committed configuration")
	})
}

// writeConfigFile writes a config file for watchdog config apply.
func writeConfigFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// config apply: a bad file changes nothing and says where it is wrong; a
// good one is committed everywhere, once; a stale generation and an action
// some node lacks are refused; -force applies it and that node says so.
func TestConfigApply(t *testing.T) {
	argv, _ := recorder(t)
	body := driftConfig(t, argv, "5s")
	c := newTestCluster(t, 3, fileConfig(t, body))
	leader := c.leader(3)
	waitFor(t, 10*time.Second, "the first configuration", func() bool { return leader.FSM.ConfigGeneration() == 1 })
	first := leader.FSM.ConfigInfo()
	all := strings.Join(c.addrs(), ",")

	bad := writeConfigFile(t, "bad.yaml", strings.Replace(body, "timeout: 5s", "timeout: 1ms", 1)+"  other:\n    actions: [nope]\n")
	out, errOut, code := runCLI(t, nil, "config", "apply", "-addr", all, bad)
	if code != cli.ExitFailed || !strings.Contains(errOut, bad+":7: services.worker.timeout:") ||
		!strings.Contains(errOut, bad+":10: services.other.actions") {
		t.Fatalf("apply of a bad file: exit %d\n%s%s", code, out, errOut)
	}
	// The API checks it too, for clients other than the CLI.
	req, _ := http.NewRequest(http.MethodPut, leader.URL()+"/v1/config?name=bad.yaml", strings.NewReader("services:\n  w:\n    timeout: 1ms\n"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var apiErr struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&apiErr)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(apiErr.Error, "bad.yaml:3: services.w.timeout:") {
		t.Fatalf("PUT /v1/config of a bad file: %d %q", resp.StatusCode, apiErr.Error)
	}
	committedEverywhere(t, c, first, 5*time.Second, []string{"hook"})

	good := writeConfigFile(t, "good.yaml", driftConfig(t, argv, "7s"))
	out = mustCLI(t, cli.ExitOK, "config", "apply", "-addr", all, good)
	second := leader.FSM.ConfigInfo()
	if !strings.Contains(out, "applied "+good+": generation 2") || second.Hash == first.Hash {
		t.Fatalf("apply: %s, committed %+v", out, second)
	}
	committedEverywhere(t, c, second, 7*time.Second, []string{"hook"})
	if out := mustCLI(t, cli.ExitOK, "config", "apply", "-addr", all, good); !strings.Contains(out, "unchanged") {
		t.Fatalf("second apply: %s", out)
	}
	if _, errOut, code := runCLI(t, nil, "config", "apply", "-addr", all, "-generation", "1", good); code != cli.ExitFailed ||
		!strings.Contains(errOut, "generation 2, not 1") {
		t.Fatalf("apply at a stale generation: exit %d %s", code, errOut)
	}

	// An action no node defines: refused, naming the nodes; forced, the
	// nodes are not ready and say why.
	pager := writeConfigFile(t, "pager.yaml", strings.Replace(driftConfig(t, argv, "7s"), "actions:\n", "actions:\n  pager:\n    exec: [\"/bin/true\"]\n", 1)+
		"    on_recovered: [pager]\n")
	_, errOut, code = runCLI(t, nil, "config", "apply", "-addr", all, pager)
	if code != cli.ExitFailed || !strings.Contains(errOut, "n1's file lacks pager") || !strings.Contains(errOut, "n3's file lacks pager") {
		t.Fatalf("apply naming an action the nodes lack: exit %d %s", code, errOut)
	}
	if g := leader.FSM.ConfigGeneration(); g != 2 {
		t.Fatalf("refused apply changed the generation to %d", g)
	}
	_, errOut, code = runCLI(t, nil, "config", "apply", "-addr", all, "-force", pager)
	if code != cli.ExitOK || !strings.Contains(errOut, "warning: n2's config file lacks pager") {
		t.Fatalf("forced apply: exit %d %s", code, errOut)
	}
	waitFor(t, 10*time.Second, "every node to be not ready for lack of pager", func() bool {
		for _, a := range c.running() {
			if err := a.Node.Ready(); err == nil || !strings.Contains(err.Error(), "pager") {
				return false
			}
		}
		return true
	})
}
