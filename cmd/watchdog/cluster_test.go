package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/config"
	"github.com/watchdog-ha/watchdog/fsm"
)

// testCluster is a set of real agents in this process, talking Raft, gossip
// and HTTP over loopback TCP.
type testCluster struct {
	t    testing.TB
	file *config.FileConfig
	// secure starts agents as `watchdog agent` does outside -dev: without
	// an api_token in file, the management routes need the token the
	// cluster generates (apiToken). Otherwise, as with -dev, they are open,
	// so that tests can drive them without a token.
	secure bool
	mu     sync.Mutex // guards agents: workload goroutines read it
	agents []*Agent   // nil once stopped
	logTo  io.Writer  // when set, every node logs there, at debug level
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("WATCHDOG_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// newTestCluster starts n agents that bootstrap together.
func newTestCluster(t testing.TB, n int, file *config.FileConfig, tunes ...tune) *testCluster {
	t.Helper()
	return startTestCluster(&testCluster{t: t, file: file}, n, tunes...)
}

// startTestCluster starts c's n agents, which bootstrap together.
func startTestCluster(c *testCluster, n int, tunes ...tune) *testCluster {
	t := c.t
	t.Helper()
	for i := range n {
		c.start(fmt.Sprintf("n%d", i+1), n, t.TempDir(), tunes...)
	}
	t.Cleanup(func() {
		for _, a := range c.running() {
			a.Close()
		}
	})
	return c
}

// newSecureTestCluster is newTestCluster with the agents' secure defaults:
// see testCluster.secure.
func newSecureTestCluster(t testing.TB, n int, file *config.FileConfig, tunes ...tune) *testCluster {
	t.Helper()
	c := &testCluster{t: t, file: file, secure: true}
	for i := range n {
		c.start(fmt.Sprintf("n%d", i+1), n, t.TempDir(), tunes...)
	}
	t.Cleanup(func() {
		for _, a := range c.running() {
			a.Close()
		}
	})
	return c
}

// apiToken is the API token a generated, as the CLI finds it with
// WATCHDOG_TOKEN_FILE: the same on every node once the cluster has formed.
func apiToken(t testing.TB, a *Agent) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(a.dataDir, cluster.APITokenFile))
	if err != nil {
		t.Fatalf("the API token of %s: %v", a.Node.ID(), err)
	}
	return strings.TrimSpace(string(b))
}

// start adds an agent on fresh ports; it joins through the first running agent.
func (c *testCluster) start(id string, expect int, dataDir string, tunes ...tune) *Agent {
	c.t.Helper()
	return c.launch(&config.AgentConfig{NodeID: id, HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		DataDir: dataDir, BootstrapExpect: expect, File: c.file}, tunes...)
}

// startAt restarts a node as it was: same id, data dir and addresses.
func (c *testCluster) startAt(id, dataDir, raftAddr, gossipAddr, httpAddr string) *Agent {
	c.t.Helper()
	return c.launch(&config.AgentConfig{NodeID: id, HTTPAddr: httpAddr, RaftAddr: raftAddr, GossipAddr: gossipAddr,
		DataDir: dataDir, File: c.file})
}

func (c *testCluster) launch(cfg *config.AgentConfig, tunes ...tune) *Agent {
	c.t.Helper()
	id := cfg.NodeID
	if running := c.running(); len(running) > 0 {
		cfg.Join = []string{running[0].Node.GossipAddr()}
	}
	cfg.OpenManagement = !c.secure
	fast := func(cc *cluster.Config) {
		cc.ReconcileInterval = 300 * time.Millisecond
		cc.StatusInterval = 250 * time.Millisecond // promotion and reachability follow it
	}
	log := testLogger(c.t)
	if c.logTo != nil {
		log = slog.New(slog.NewTextHandler(c.logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := StartAgent(cfg, log.With("node", id), append([]tune{fast}, tunes...)...)
	if err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	c.mu.Lock()
	c.agents = append(c.agents, a)
	c.mu.Unlock()
	return a
}

func (c *testCluster) running() []*Agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Agent
	for _, a := range c.agents {
		if a != nil {
			out = append(out, a)
		}
	}
	return out
}

// addrs are the HTTP addresses of the running agents.
func (c *testCluster) addrs() []string {
	var out []string
	for _, a := range c.running() {
		out = append(out, a.Addr)
	}
	return out
}

// stop closes an agent, as a crash would leave it: still in the configuration.
func (c *testCluster) stop(a *Agent) {
	c.mu.Lock()
	for i, x := range c.agents {
		if x == a {
			c.agents[i] = nil
		}
	}
	c.mu.Unlock()
	if err := a.Close(); err != nil {
		c.t.Logf("close %s: %v", a.Node.ID(), err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leader waits until the running agents agree on a leader with n voters.
func (c *testCluster) leader(voters int) *Agent {
	c.t.Helper()
	var leader *Agent
	waitFor(c.t, 15*time.Second, "a leader and its voters", func() bool {
		leader = nil
		for _, a := range c.running() {
			if a.Node.IsLeader() {
				leader = a
			}
		}
		if leader == nil {
			return false
		}
		n := 0
		for _, m := range leader.Node.Members() {
			if m.Voter {
				n++
			}
		}
		for _, a := range c.running() {
			if id, _ := a.Node.Leader(); id != leader.Node.ID() {
				return false
			}
		}
		return n == voters
	})
	return leader
}

func heartbeat(t *testing.T, a *Agent, id string) int {
	t.Helper()
	resp, err := http.Post("http://"+a.Addr+"/v1/heartbeat/"+id, "text/plain", nil)
	if err != nil {
		t.Fatalf("heartbeat %s via %s: %v", id, a.Node.ID(), err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, b)
		}
	}
	return resp.StatusCode
}

// recorder is an exec action that appends "EVENT SERVICE" to a file.
func recorder(t *testing.T) (argv []string, lines func() []string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "actions.log")
	script := filepath.Join(dir, "record.sh")
	body := "#!/bin/sh\necho \"$WATCHDOG_EVENT $WATCHDOG_SERVICE_ID $WATCHDOG_INCIDENT_ID\" >> " + log + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{script}, func() []string {
		b, _ := os.ReadFile(log)
		return strings.Fields(strings.ReplaceAll(string(bytes.TrimSpace(b)), " ", "_"))
	}
}

func fileConfig(t *testing.T, yaml string) *config.FileConfig {
	t.Helper()
	f, err := config.ParseConfig([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func serviceOn(a *Agent, id string) (fsm.Service, bool) { return a.FSM.Service(id) }
