package main

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

func TestHeartbeatsThroughAnyNodeAreCommittedEverywhere(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1m}\n"))
	c.leader(3)
	for i, a := range c.running() {
		if code := heartbeat(t, a, "svc-"+strconv.Itoa(i)); code != http.StatusOK {
			t.Fatalf("heartbeat via %s: %d", a.Node.ID(), code)
		}
	}
	// A 200 means committed: the leader has applied it already.
	leader := c.leader(3)
	for i := range 3 {
		if _, ok := serviceOn(leader, "svc-"+strconv.Itoa(i)); !ok {
			t.Fatalf("svc-%d acknowledged but not on the leader", i)
		}
	}
	for _, a := range c.running() {
		waitFor(t, 2*time.Second, "replication to "+a.Node.ID(), func() bool { return a.FSM.Len() == 3 })
	}
}

func TestConcurrentHeartbeatsAreGroupCommitted(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1m}\n"))
	before := c.leader(3).Node.AppliedIndex()
	var wg sync.WaitGroup
	const clients, each = 32, 20
	var retried atomic.Int64
	failed := make(chan string, clients*each)
	for i := range clients {
		wg.Go(func() {
			for j := range each {
				// A 503 (an election on a loaded machine) is retried on
				// the next node, as a load balancer would.
				id, ok := fmt.Sprintf("c%d-%d", i, j), false
				for try := 0; try < 50 && !ok; try++ {
					a := rotate(c.running(), i+try)[0]
					ok = heartbeat(t, a, id) == http.StatusOK
					if !ok {
						retried.Add(1)
					}
				}
				if !ok {
					failed <- id
				}
			}
		})
	}
	wg.Wait()
	close(failed)
	for f := range failed {
		t.Errorf("%s never acknowledged", f)
	}
	leader := c.leader(3)
	if n := leader.FSM.Len(); n != clients*each {
		t.Fatalf("%d services committed, want %d", n, clients*each)
	}
	entries := leader.Node.AppliedIndex() - before
	t.Logf("%d heartbeats in %d log entries (%d retried after a 503)", clients*each, entries, retried.Load())
	if entries >= clients*each {
		t.Fatalf("%d heartbeats took %d entries: no batching", clients*each, entries)
	}
}

func TestLeaderDetectsSilenceAndActsOnce(t *testing.T) {
	argv, actions := recorder(t)
	file := fileConfig(t, fmt.Sprintf(`
check_interval: 100ms
actions:
  record: {exec: [%q], timeout: 10s}
services:
  quiet: {timeout: 1s, actions: [record], on_recovered: [record]}
`, argv[0]))
	c := newTestCluster(t, 3, file)
	leader := c.leader(3)
	const timeout = time.Second
	sent := time.Now()
	if code := heartbeat(t, c.running()[1], "quiet"); code != http.StatusOK {
		t.Fatalf("heartbeat: %d", code)
	}
	var s fsm.Service
	waitFor(t, 5*time.Second, "quiet to go down", func() bool {
		s, _ = serviceOn(leader, "quiet")
		if s.Status != fsm.StatusDown {
			return false
		}
		// Seen down before a timeout of silence has passed: it was
		// declared down early, whatever the stamps say.
		if seen := time.Since(sent); seen < timeout {
			t.Fatalf("quiet seen down %s after its heartbeat was sent, before its timeout of %s", seen, timeout)
		}
		return true
	})
	inc := s.Current()
	delay := time.Duration(inc.Opened - inc.LastSeen)
	t.Logf("incident opened %s after the last heartbeat (timeout %s): %s after the deadline", delay, timeout, delay-timeout)
	if delay < timeout || delay > timeout+time.Second {
		t.Errorf("detected %s after the last heartbeat, want from the timeout (%s) to a second after it", delay, timeout)
	}
	waitFor(t, 5*time.Second, "the down action to be recorded", func() bool {
		s, _ = serviceOn(leader, "quiet")
		return s.Current().Actions[0].State == fsm.ActionDone
	})
	// Recovery: the next heartbeat resolves the incident and runs on_recovered.
	if code := heartbeat(t, c.running()[2], "quiet"); code != http.StatusOK {
		t.Fatalf("heartbeat: %d", code)
	}
	waitFor(t, 5*time.Second, "the recovered action", func() bool { return len(actions()) == 2 })
	want := []string{"down_quiet_" + inc.ID, "recovered_quiet_" + inc.ID}
	if got := actions(); !slices.Equal(got, want) {
		t.Fatalf("actions ran %q, want %q", got, want)
	}
	s, _ = serviceOn(leader, "quiet")
	if s.Status != fsm.StatusUp || s.Current().Resolved == 0 || len(s.Incidents) != 1 {
		t.Fatalf("after recovery: %+v", s)
	}
}

func TestFailoverKeepsWatchingWithoutFalseDeaths(t *testing.T) {
	argv, actions := recorder(t)
	file := fileConfig(t, fmt.Sprintf(`
check_interval: 100ms
actions:
  record: {exec: [%q]}
services:
  alive: {timeout: 2s, actions: [record]}
  doomed: {timeout: 2s, actions: [record]}
`, argv[0]))
	c := newTestCluster(t, 3, file)
	old := c.leader(3)
	stopBeating := keepBeating(t, c, "alive", 300*time.Millisecond)
	defer stopBeating()
	killed := time.Now()
	c.stop(old)
	leader := c.leader(3)
	t.Logf("new leader %s %s after the old one stopped", leader.Node.ID(), time.Since(killed).Round(time.Millisecond))
	// doomed never beats: the new leader must still find it, once.
	waitFor(t, 10*time.Second, "doomed's down action", func() bool { return len(actions()) >= 1 })
	// Give alive several timeouts under the new leader to be wrongly declared dead.
	deadline := time.Now().Add(3 * time.Second)
	waitFor(t, 5*time.Second, "three more seconds of watching", func() bool { return time.Now().After(deadline) })
	got := actions()
	if len(got) != 1 || !strings.HasPrefix(got[0], "down_doomed_") {
		t.Fatalf("actions = %q, want exactly one down for doomed", got)
	}
	if s, _ := serviceOn(leader, "alive"); s.Status != fsm.StatusUp {
		t.Fatalf("alive is %s after failover", s.Status)
	}
}

// keepBeating heartbeats id through every running agent in turn, as a load
// balancer would, until the returned stop is called.
func keepBeating(t *testing.T, c *testCluster, id string, every time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	running := func() []*Agent { return c.running() }
	go func() {
		defer close(finished)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			for _, a := range rotate(running(), i) {
				resp, err := http.Post("http://"+a.Addr+"/v1/heartbeat/"+id, "text/plain", nil)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

func rotate[T any](as []T, i int) []T {
	if len(as) == 0 {
		return nil
	}
	k := i % len(as)
	return append(as[k:len(as):len(as)], as[:k]...)
}

func TestLateJoinerCatchesUpFromSnapshot(t *testing.T) {
	small := func(cc *cluster.Config) { cc.TrailingLogs = 5; cc.SnapshotThreshold = 5 }
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1h}\n"), small)
	leader := c.leader(3)
	for i := range 50 {
		if code := heartbeat(t, leader, "early-"+strconv.Itoa(i)); code != http.StatusOK {
			t.Fatalf("heartbeat: %d", code)
		}
	}
	if err := leader.Node.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	late := c.start("n4", 0, t.TempDir(), small)
	c.leader(4)
	waitFor(t, 10*time.Second, "n4 to catch up", func() bool { return late.FSM.Len() == 50 })
	if idx := late.Node.Stats()["last_snapshot_index"]; idx == "0" {
		t.Fatalf("n4 caught up without a snapshot (last_snapshot_index %s)", idx)
	}
	// And it keeps up with what follows, as a voter.
	if code := heartbeat(t, late, "after"); code != http.StatusOK {
		t.Fatalf("heartbeat via n4: %d", code)
	}
	waitFor(t, 5*time.Second, "n4 to see its own heartbeat", func() bool { _, ok := serviceOn(late, "after"); return ok })
}

func TestRestartedNodeRejoinsAndCatchesUp(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1h}\n"))
	leader := c.leader(3)
	var follower *Agent
	for _, a := range c.running() {
		if a != leader {
			follower = a
		}
	}
	id, raftAddr, gossipAddr, httpAddr := follower.Node.ID(), follower.Node.RaftAddr(), follower.Node.GossipAddr(), follower.Addr
	dataDir := follower.dataDir
	c.stop(follower)
	for i := range 20 {
		if code := heartbeat(t, leader, "while-down-"+strconv.Itoa(i)); code != http.StatusOK {
			t.Fatalf("heartbeat with one node down: %d", code)
		}
	}
	// Same id, addresses and data dir: a restart, not a new node.
	back := c.startAt(id, dataDir, raftAddr, gossipAddr, httpAddr)
	waitFor(t, 10*time.Second, id+" to catch up", func() bool { return back.FSM.Len() == 20 })
	if n := len(c.leader(3).Node.Members()); n != 3 {
		t.Fatalf("%d members after the restart, want 3", n)
	}
}
