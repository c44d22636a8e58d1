package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cli"
	"github.com/watchdog-ha/watchdog/cluster"
)

// configChanges records, per node id, the changes to the Raft
// configuration the leaders log making ("add non-voter", "promote to
// voter", ...), in order, whichever node led.
type configChanges struct {
	mu   sync.Mutex
	byID map[string][]string
}

func (cc *configChanges) tune(c *cluster.Config) {
	c.Logger = slog.New(&changeRecorder{next: c.Logger.Handler(), changes: cc})
}

func (cc *configChanges) of(id string) []string {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return slices.Clone(cc.byID[id])
}

// changeRecorder passes records on to the node's own handler and notes
// the configuration changes among them.
type changeRecorder struct {
	next    slog.Handler
	changes *configChanges
}

func (h *changeRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *changeRecorder) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case "add non-voter", "promote to voter", "remove server":
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "id" {
				h.changes.mu.Lock()
				h.changes.byID[a.Value.String()] = append(h.changes.byID[a.Value.String()], r.Message)
				h.changes.mu.Unlock()
			}
			return true
		})
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *changeRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &changeRecorder{next: h.next.WithAttrs(as), changes: h.changes}
}

func (h *changeRecorder) WithGroup(g string) slog.Handler {
	return &changeRecorder{next: h.next.WithGroup(g), changes: h.changes}
}

// shutdown stops an agent as SIGTERM does: a leader hands leadership over
// first; the node keeps its place in the configuration.
func (c *testCluster) shutdown(a *Agent) {
	c.mu.Lock()
	for i, x := range c.agents {
		if x == a {
			c.agents[i] = nil
		}
	}
	c.mu.Unlock()
	if err := a.Shutdown(context.Background()); err != nil {
		c.t.Logf("shutdown %s: %v", a.Node.ID(), err)
	}
}

// agent returns the running agent with the given id.
func (c *testCluster) agent(id string) *Agent {
	c.t.Helper()
	for _, a := range c.running() {
		if a.Node.ID() == id {
			return a
		}
	}
	c.t.Fatalf("no running agent %s", id)
	return nil
}

// follower returns a running agent that is not the leader.
func (c *testCluster) follower(leader *Agent) *Agent {
	for _, a := range c.running() {
		if a != leader {
			return a
		}
	}
	c.t.Fatal("no follower running")
	return nil
}

// suffrages is the Raft configuration as a sees it: id to voter/nonvoter.
func suffrages(a *Agent) map[string]string {
	out := map[string]string{}
	for _, m := range a.Node.Members() {
		if m.Suffrage != "none" {
			out[m.ID] = m.Suffrage
		}
	}
	return out
}

// lbLoad sends heartbeats as clients behind a load balancer do: each goes to
// the next node; an attempt that fails (connection refused, 503) is retried
// at once on the following nodes, and after a round in which every node
// failed, again after a short pause (the nodes send Retry-After), for up to
// 5 s. retried counts heartbeats that needed more than one attempt, failed
// those that were never committed.
type lbLoad struct {
	targets                func() []string // the nodes' HTTP addresses
	sent, retried, failed  atomic.Int64
	worstRetry, worstRound atomic.Int64 // longest time to commit (ns), most rounds needed
	mu                     sync.Mutex
	lastErr                string
	pausedFor              []string // the errors of a round that failed on every node
	done                   chan struct{}
	wg                     sync.WaitGroup
}

func startLoad(c *testCluster, workers int, every time.Duration) *lbLoad {
	return startLoadOn(c.addrs, workers, every)
}

// startLoadOn is startLoad on nodes whose HTTP addresses targets gives.
func startLoadOn(targets func() []string, workers int, every time.Duration) *lbLoad {
	l := &lbLoad{targets: targets, done: make(chan struct{})}
	for w := range workers {
		l.wg.Go(func() { l.work(fmt.Sprintf("load-%d", w), every) })
	}
	return l
}

func (l *lbLoad) work(id string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		l.beat(id, i)
		select {
		case <-l.done:
			return
		case <-tick.C:
		}
	}
}

func (l *lbLoad) beat(id string, i int) {
	l.sent.Add(1)
	start := time.Now()
	for round := 0; time.Since(start) < 5*time.Second; round++ {
		var errs []string
		for k, addr := range rotate(l.targets(), i) {
			err := post("http://" + addr + "/v1/heartbeat/" + id)
			if err == nil {
				if round > 0 || k > 0 {
					l.retried.Add(1)
					atomicMax(&l.worstRetry, int64(time.Since(start)))
					atomicMax(&l.worstRound, int64(round+1))
				}
				return
			}
			errs = append(errs, err.Error())
			l.mu.Lock()
			l.lastErr = err.Error()
			l.mu.Unlock()
		}
		l.mu.Lock()
		if len(l.pausedFor) < 3 {
			l.pausedFor = append(l.pausedFor, strings.Join(errs, "; "))
		}
		l.mu.Unlock()
		time.Sleep(100 * time.Millisecond) // the pause between rounds, as a client honouring Retry-After does
	}
	l.failed.Add(1)
}

func post(url string) error {
	resp, err := http.Post(url, "text/plain", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

func atomicMax(v *atomic.Int64, x int64) {
	for old := v.Load(); x > old && !v.CompareAndSwap(old, x); old = v.Load() {
	}
}

// stop ends the load and fails the test if any heartbeat was lost.
func (l *lbLoad) stop(t *testing.T) {
	t.Helper()
	close(l.done)
	l.wg.Wait()
	t.Logf("load: %d heartbeats, %d needed a retry (worst: %s, %d round(s)), %d failed",
		l.sent.Load(), l.retried.Load(), time.Duration(l.worstRetry.Load()).Round(time.Millisecond), l.worstRound.Load(), l.failed.Load())
	for _, e := range l.pausedFor {
		t.Logf("a round where every node failed: %s", e)
	}
	if l.failed.Load() > 0 {
		t.Fatalf("%d heartbeats were never committed; last error: %s", l.failed.Load(), l.lastErr)
	}
}

// newLeaderAfter watches the followers until one names a leader other than
// old, and returns when that was, measured from start.
func newLeaderAfter(c *testCluster, old string) (wait func() time.Duration) {
	start := time.Now()
	got := make(chan time.Duration, 1)
	go func() {
		for time.Since(start) < 30*time.Second {
			for _, a := range c.running() {
				if id, _ := a.Node.Leader(); a.Node.ID() != old && id != "" && id != old {
					got <- time.Since(start)
					return
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		got <- -1
	}()
	return func() time.Duration { return <-got }
}

func TestGrowToFiveAndShrinkToThreeUnderLoad(t *testing.T) {
	changes := &configChanges{byID: map[string][]string{}}
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1h}\n"), changes.tune)
	c.leader(3)
	load := startLoad(c, 3, 20*time.Millisecond)

	// Grow: each newcomer joins as a non-voter and is promoted once caught up.
	for _, id := range []string{"n4", "n5"} {
		start := time.Now()
		c.start(id, 0, t.TempDir(), changes.tune)
		var sawNonvoter bool
		waitFor(t, 20*time.Second, id+" to become a voter", func() bool {
			l := leaderOf(c)
			if l == nil {
				return false
			}
			s := suffrages(l)[id]
			sawNonvoter = sawNonvoter || s == "nonvoter"
			return s == "voter"
		})
		t.Logf("%s: voter %s after start (seen as non-voter first: %v)", id, time.Since(start).Round(time.Millisecond), sawNonvoter)
		// Whatever a poll saw, the leaders' own record of the changes
		// they made says how the newcomer came in.
		if got := changes.of(id); len(got) < 2 || got[0] != "add non-voter" || !slices.Contains(got[1:], "promote to voter") {
			t.Fatalf("%s: configuration changes %q, want it added as a non-voter first, then promoted", id, got)
		}
	}
	leader := c.leader(5)

	// Shrink: the leader leaves first (it hands over), then a follower.
	old := leader.Node.ID()
	handover := newLeaderAfter(c, old)
	start := time.Now()
	out := mustCLI(t, cli.ExitOK, "leave", "-addr", leader.Addr)
	if out != old+": left the cluster\n" {
		t.Fatalf("leave said %q", out)
	}
	t.Logf("leave of leader %s: new leader after %s, leave done after %s", old, handover().Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond))
	waitForLeft(t, leader)
	c.shutdown(leader)
	leader = c.leader(4)
	gone := c.follower(leader)
	mustCLI(t, cli.ExitOK, "leave", "-addr", gone.Addr)
	waitForLeft(t, gone)
	c.shutdown(gone)
	leader = c.leader(3)
	load.stop(t)

	conf := suffrages(leader)
	if len(conf) != 3 || conf[old] != "" || conf[gone.Node.ID()] != "" {
		t.Fatalf("configuration after the leaves: %v", conf)
	}
	waitFor(t, 10*time.Second, "gossip to show both as left", func() bool {
		n := 0
		for _, m := range leader.Node.Members() {
			if (m.ID == old || m.ID == gone.Node.ID()) && m.Gossip == "left" {
				n++
			}
		}
		return n == 2
	})
}

// leaderOf is the running agent that leads right now, or nil.
func leaderOf(c *testCluster) *Agent {
	for _, a := range c.running() {
		if a.Node.IsLeader() {
			return a
		}
	}
	return nil
}

func waitForLeft(t *testing.T, a *Agent) {
	t.Helper()
	select {
	case <-a.Node.Left():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s answered the leave but never closed Left", a.Node.ID())
	}
}

func TestMembersRemoveRefusesWhatWouldHurtAndRemovesTheDead(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1h}\n"))
	leader := c.leader(3)
	follower := c.follower(leader)
	var dead *Agent
	for _, a := range c.running() {
		if a != leader && a != follower {
			dead = a
		}
	}
	refused := func(want string, args ...string) {
		t.Helper()
		out, errOut, code := runCLI(t, nil, append([]string{"members", "remove", "-addr", follower.Addr}, args...)...)
		if code != cli.ExitFailed || !strings.Contains(errOut, want) {
			t.Fatalf("members remove %v: exit %d, want %d and %q\n%s%s", args, code, cli.ExitFailed, want, out, errOut)
		}
		t.Logf("members remove %v: %s", args, strings.TrimSpace(errOut))
	}
	refused("is alive", dead.Node.ID())
	refused("is the leader", leader.Node.ID())
	refused("is the leader", "-force", leader.Node.ID())
	refused("no such member", "n9")

	c.stop(dead)
	// Until its status poll fails, the node still counts as alive.
	waitFor(t, 10*time.Second, "the leader to see "+dead.Node.ID()+" unreachable", func() bool {
		for _, m := range leader.Node.Members() {
			if m.ID == dead.Node.ID() {
				return m.StatusError != ""
			}
		}
		return false
	})
	// The leave of the follower now would leave the leader alone with a dead voter.
	out, errOut, code := runCLI(t, nil, "leave", "-addr", follower.Addr)
	if code != cli.ExitFailed || !strings.Contains(errOut, "committing needs 2") {
		t.Fatalf("leave below quorum: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("leave below quorum refused: %s", strings.TrimSpace(errOut))

	if out := mustCLI(t, cli.ExitOK, "members", "remove", "-addr", follower.Addr, dead.Node.ID()); out != dead.Node.ID()+": removed\n" {
		t.Fatalf("remove said %q", out)
	}
	if conf := suffrages(leader); len(conf) != 2 || conf[dead.Node.ID()] != "" {
		t.Fatalf("configuration after the removal: %v", conf)
	}
	again := mustCLI(t, cli.ExitOK, "members", "remove", "-addr", follower.Addr, dead.Node.ID())
	if !strings.Contains(again, "nothing to do") {
		t.Fatalf("second remove said %q", again)
	}
	// The cluster of two still commits.
	if code := heartbeat(t, follower, "after-remove"); code != http.StatusOK {
		t.Fatalf("heartbeat after the removal: %d", code)
	}
}

func TestLastVoterNeverLeaves(t *testing.T) {
	c := newTestCluster(t, 1, fileConfig(t, "defaults: {timeout: 1h}\n"))
	solo := c.leader(1)
	for _, args := range [][]string{{"-addr", solo.Addr}, {"-force", "-addr", solo.Addr}} {
		_, errOut, code := runCLI(t, nil, append([]string{"leave"}, args...)...)
		if code != cli.ExitFailed || !strings.Contains(errOut, "no voter") {
			t.Fatalf("leave %v of the last voter: exit %d\n%s", args, code, errOut)
		}
	}
	if !solo.Node.IsLeader() {
		t.Fatal("the refused leave changed leadership")
	}
}

func TestDeadServerIsReapedButARestartKeepsItsPlace(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "dead_server_reap_after: 3s\ndefaults: {timeout: 1h}\n"))
	leader := c.leader(3)
	restarted, dead := c.follower(leader), (*Agent)(nil)
	for _, a := range c.running() {
		if a != leader && a != restarted {
			dead = a
		}
	}
	// A restart: same id, data and addresses, back within the reap time.
	id, dir, raftAddr, gossipAddr, httpAddr := restarted.Node.ID(), restarted.dataDir, restarted.Node.RaftAddr(), restarted.Node.GossipAddr(), restarted.Addr
	c.shutdown(restarted)
	c.startAt(id, dir, raftAddr, gossipAddr, httpAddr)
	leader = c.leader(3)

	stopped := time.Now()
	c.stop(dead)
	waitFor(t, 90*time.Second, dead.Node.ID()+" to be reaped", func() bool {
		l := leaderOf(c)
		if l == nil {
			return false
		}
		_, in := suffrages(l)[dead.Node.ID()]
		return !in
	})
	t.Logf("%s reaped %s after it stopped (gossip declares it dead, then 3s)", dead.Node.ID(), time.Since(stopped).Round(time.Millisecond))
	if conf := suffrages(c.leader(2)); conf[id] != "voter" || len(conf) != 2 {
		t.Fatalf("configuration after the reap: %v", conf)
	}
}

func TestWipedNodeComesBackUnderItsIDAndAddress(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1h}\n"))
	leader := c.leader(3)
	for i := range 20 {
		if code := heartbeat(t, leader, fmt.Sprintf("before-%d", i)); code != http.StatusOK {
			t.Fatalf("heartbeat: %d", code)
		}
	}
	lost := c.follower(leader)
	id, raftAddr, gossipAddr, httpAddr := lost.Node.ID(), lost.Node.RaftAddr(), lost.Node.GossipAddr(), lost.Addr
	c.stop(lost)
	start := time.Now()
	back := c.startAt(id, t.TempDir(), raftAddr, gossipAddr, httpAddr) // an empty data dir
	// Caught up from a snapshot under its old entry: never a second entry
	// for it, never one at another address.
	var seen []string
	waitFor(t, 20*time.Second, id+" to be a voter again with the data", func() bool {
		l := leaderOf(c)
		if l == nil {
			return false
		}
		var entries int
		for _, m := range l.Node.Members() {
			if m.ID == id || m.RaftAddr == raftAddr {
				entries++
				if m.Suffrage != "none" && m.RaftAddr != raftAddr {
					t.Fatalf("%s in the configuration at %s, want %s", id, m.RaftAddr, raftAddr)
				}
			}
		}
		if entries > 1 {
			t.Fatalf("%d entries for %s: %+v", entries, id, l.Node.Members())
		}
		s := suffrages(l)[id]
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		return s == "voter" && back.FSM.Len() == 20
	})
	t.Logf("%s caught up %s after restarting on an empty disk; suffrage seen: %v", id, time.Since(start).Round(time.Millisecond), seen)
	if code := heartbeat(t, back, "after"); code != http.StatusOK {
		t.Fatalf("heartbeat through the replaced node: %d", code)
	}
	if conf := suffrages(c.leader(3)); len(conf) != 3 || conf[id] != "voter" {
		t.Fatalf("configuration after the replacement: %v", conf)
	}
}
