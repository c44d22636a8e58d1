package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// testCluster is n real nodes in this process, the multi-node fixture of
// this package's tests: Raft, gossip and the internal HTTP routes over
// loopback TCP on ports the system picks, each node with a data dir under
// t.TempDir(), all stopped by t.Cleanup.
//
//	c := newCluster(t, 3)
//	leader := c.Leader()
//	c.Stop(leader.ID())
//	c.Restart(leader.ID())
//
// Nodes are named n1, n2, ... and handled by id: a restart makes a new
// *Node under the same id, data dir and addresses. The methods are for the
// test's own goroutine.
type testCluster struct {
	t     *testing.T
	opts  clusterOptions
	nodes []*testNode // in the order they were added
	log   *testLog
}

// testNode is one member, running or stopped.
type testNode struct {
	cfg  Config       // as last started: its bound addresses and data dir
	node *Node        // nil while stopped
	srv  *http.Server // its HTTP port: internal routes and any test routes
}

// clusterOptions shape every node of a testCluster.
type clusterOptions struct {
	tune    func(*Config)
	handler func(*Node) http.Handler
}

// clusterOption is an option of newCluster.
type clusterOption func(*clusterOptions)

// withConfig changes every node's configuration before it starts, after
// the test defaults.
func withConfig(tune func(*Config)) clusterOption {
	return func(o *clusterOptions) { o.tune = tune }
}

// withHandler is what each node's HTTP port serves; by default its
// internal routes (InternalHandler), as httpapi mounts them.
func withHandler(h func(*Node) http.Handler) clusterOption {
	return func(o *clusterOptions) { o.handler = h }
}

// clusterWait bounds every wait of the fixture: generous, as elections and
// gossip are slow on a loaded machine running the race detector.
const clusterWait = 20 * time.Second

// newCluster starts n nodes that bootstrap together and returns once they
// agree on a leader (Leader).
func newCluster(t *testing.T, n int, opts ...clusterOption) *testCluster {
	t.Helper()
	c := &testCluster{t: t, log: newTestLog(t)}
	for _, o := range opts {
		o(&c.opts)
	}
	// The first TempDir registers the removal of the data dirs: before
	// the nodes' cleanup, so that it runs after they are stopped.
	t.TempDir()
	t.Cleanup(c.stopAll)
	for i := range n {
		c.start(Config{NodeID: fmt.Sprintf("n%d", i+1), RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
			HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), BootstrapExpect: n})
	}
	c.Leader()
	return c
}

// Add starts a new node, n<k>, that joins the running ones through gossip
// (it never bootstraps): the leader adds it.
func (c *testCluster) Add() *Node {
	c.t.Helper()
	return c.start(Config{NodeID: fmt.Sprintf("n%d", len(c.nodes)+1), RaftAddr: "127.0.0.1:0",
		GossipAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: c.t.TempDir()})
}

// Stop closes node id. To the others it is as if it crashed: it stays in
// the Raft configuration, and hands nothing over.
func (c *testCluster) Stop(id string) {
	c.t.Helper()
	tn := c.member(id)
	if tn.node == nil {
		c.t.Fatalf("stop %s: not running", id)
	}
	c.halt(tn)
}

// Restart starts node id again as it was: same id, data dir and addresses.
func (c *testCluster) Restart(id string) *Node {
	c.t.Helper()
	tn := c.member(id)
	if tn.node != nil {
		c.t.Fatalf("restart %s: still running", id)
	}
	return c.start(tn.cfg)
}

// Running lists the running nodes in the order they were added.
func (c *testCluster) Running() []*Node {
	var out []*Node
	for _, tn := range c.nodes {
		if tn.node != nil {
			out = append(out, tn.node)
		}
	}
	return out
}

// Leader waits until exactly one running node leads, has established its
// leadership (it has applied everything earlier leaders committed), and
// every running node names it with its HTTP address (so that forwarding
// can reach it); it returns that node.
func (c *testCluster) Leader() *Node {
	c.t.Helper()
	var leader *Node
	c.waitFor("the running nodes to agree on a leader", func() bool {
		leader = c.agreedLeader()
		return leader != nil
	})
	return leader
}

func (c *testCluster) agreedLeader() *Node {
	var leader *Node
	running := c.Running()
	for _, n := range running {
		if n.IsLeader() {
			if leader != nil {
				return nil // two think they lead: one is stale
			}
			leader = n
		}
	}
	if leader == nil || leader.terms.cur.Load() == nil {
		return nil
	}
	for _, n := range running {
		if id, addr := n.Leader(); id != leader.ID() || addr == "" {
			return nil
		}
	}
	return leader
}

// Followers returns the running nodes other than the leader (Leader).
func (c *testCluster) Followers() []*Node {
	c.t.Helper()
	leader := c.Leader()
	var out []*Node
	for _, n := range c.Running() {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// Sync waits until every running node has applied all the leader has
// (Leader), so all of what was committed, and returns the leader: the way
// to read a follower after a write.
func (c *testCluster) Sync() *Node {
	c.t.Helper()
	leader := c.Leader()
	index := leader.AppliedIndex()
	c.waitFor(fmt.Sprintf("every running node to apply index %d", index), func() bool {
		for _, n := range c.Running() {
			if n.AppliedIndex() < index {
				return false
			}
		}
		return true
	})
	return leader
}

// suffrages is the Raft configuration as n sees it: each server's id and
// suffrage (voter, nonvoter).
func suffrages(n *Node) map[string]string {
	out := map[string]string{}
	servers, err := n.servers()
	if err != nil {
		return nil
	}
	for _, s := range servers {
		out[string(s.ID)] = suffrage(s.Suffrage)
	}
	return out
}

// configuration is the Raft configuration as the leader sees it, or nil
// while the running nodes do not agree on a leader.
func (c *testCluster) configuration() map[string]string {
	if l := c.agreedLeader(); l != nil {
		return suffrages(l)
	}
	return nil
}

// lastSeen is when n's state last heard from each of ids; a missing
// service fails the test.
func lastSeen(t *testing.T, n *Node, ids ...string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, id := range ids {
		s, ok := n.FSM().Service(id)
		if !ok {
			t.Fatalf("%s does not know %s", n.ID(), id)
		}
		out[id] = s.LastSeen
	}
	return out
}

// configChanges are the changes the leaders made to node id's entry in
// the Raft configuration, as they logged them, in order: a change retried
// after a failure counts once.
func (c *testCluster) configChanges(id string) []string {
	var steps []string
	for _, line := range c.log.lines(" id=" + id) {
		if !strings.Contains(line+" ", " id="+id+" ") {
			continue // another id that starts with this one
		}
		for _, verb := range []string{"add non-voter", "promote to voter", "remove server"} {
			if strings.Contains(line, `msg="`+verb+`"`) && (len(steps) == 0 || steps[len(steps)-1] != verb) {
				steps = append(steps, verb)
			}
		}
	}
	return steps
}

// Beat commits heartbeats through n as a client's would be: on the leader,
// or forwarded to it. A leader lost meanwhile (a stall on a loaded machine
// can cost one) is retried, as a client would: heartbeats are idempotent.
func (c *testCluster) Beat(n *Node, ids ...string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	for {
		err := n.Heartbeat(ctx, ids...)
		switch {
		case err == nil:
			return
		case !leaderChanging(err) || ctx.Err() != nil:
			c.t.Fatalf("heartbeat %v through %s: %v", ids, n.ID(), err)
		}
		c.t.Logf("heartbeat %v through %s: %v; retrying", ids, n.ID(), err)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitFor polls cond until it holds, failing the test after clusterWait.
func (c *testCluster) waitFor(what string, cond func() bool) {
	c.t.Helper()
	waitUntil(c.t, clusterWait, what, cond)
}

func (c *testCluster) member(id string) *testNode {
	c.t.Helper()
	tn := c.find(id)
	if tn == nil {
		c.t.Fatalf("no node %s in the cluster", id)
	}
	return tn
}

// start starts a node on cfg, joining the running nodes' gossip. Port 0
// in cfg's addresses picks a free one; the ones bound are kept in cfg for
// a restart.
func (c *testCluster) start(cfg Config) *Node {
	c.t.Helper()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		c.t.Fatalf("start %s: HTTP port: %v", cfg.NodeID, err)
	}
	cfg.HTTPAddr = ln.Addr().String()
	cfg.Join = nil
	for _, n := range c.Running() {
		cfg.Join = append(cfg.Join, n.GossipAddr())
	}
	run := cfg
	run.FSM = fsm.New()
	run.Logger = c.log.logger(cfg.NodeID)
	// Membership follows the status polls: fast polls make joins,
	// promotions and removals take a second rather than several.
	run.ReconcileInterval, run.StatusInterval = 300*time.Millisecond, 250*time.Millisecond
	if c.opts.tune != nil {
		c.opts.tune(&run)
	}
	n, err := New(run)
	if err != nil {
		ln.Close()
		c.t.Fatalf("start %s: %v", cfg.NodeID, err)
	}
	cfg.RaftAddr, cfg.GossipAddr = n.RaftAddr(), n.GossipAddr()
	h := http.Handler(n.InternalHandler(InternalAuth{}))
	if c.opts.handler != nil {
		h = c.opts.handler(n)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	n.Start(func(ctx context.Context, _ time.Time) { <-ctx.Done() })
	if tn := c.find(cfg.NodeID); tn != nil {
		tn.cfg, tn.node, tn.srv = cfg, n, srv
	} else {
		c.nodes = append(c.nodes, &testNode{cfg: cfg, node: n, srv: srv})
	}
	return n
}

func (c *testCluster) find(id string) *testNode {
	for _, tn := range c.nodes {
		if tn.cfg.NodeID == id {
			return tn
		}
	}
	return nil
}

// halt closes a node and its HTTP port.
func (c *testCluster) halt(tn *testNode) {
	if err := tn.srv.Close(); err != nil {
		c.t.Logf("close %s's HTTP server: %v", tn.cfg.NodeID, err)
	}
	if err := tn.node.Close(); err != nil {
		c.t.Logf("close %s: %v", tn.cfg.NodeID, err)
	}
	tn.node, tn.srv = nil, nil
}

func (c *testCluster) stopAll() {
	for _, tn := range c.nodes {
		if tn.node != nil {
			c.halt(tn)
		}
	}
}

// testLog keeps the nodes' logs of one test, for the test to read, and
// shows them only if it fails (or all along with WATCHDOG_TEST_LOG set):
// Raft's account of an election is what explains a wait that timed out.
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// testLogTail bounds what a failed test prints of its nodes' logs.
const testLogTail = 64 << 10

func newTestLog(t *testing.T) *testLog {
	l := &testLog{}
	// Registered before the nodes' own cleanup, so it runs after it: the
	// log of their shutdown is in.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		b := l.buf.Bytes()
		if len(b) > testLogTail {
			b = b[len(b)-testLogTail:]
			b = b[bytes.IndexByte(b, '\n')+1:]
		}
		t.Logf("the nodes' log (last %d bytes):\n%s", len(b), strings.TrimRight(string(b), "\n"))
	})
	return l
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the log lines that contain every one of parts, in order.
func (l *testLog) lines(parts ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for line := range strings.SplitSeq(l.buf.String(), "\n") {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

func (l *testLog) logger(node string) *slog.Logger {
	var w io.Writer = l
	if os.Getenv("WATCHDOG_TEST_LOG") != "" {
		w = io.MultiWriter(l, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", node)
}
