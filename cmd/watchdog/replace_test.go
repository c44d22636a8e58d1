package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// raftConfiguration is the Raft configuration as a's Raft states it, e.g.
// "[{Suffrage:Voter ID:n1 Address:127.0.0.1:4001} ...]".
func raftConfiguration(a *Agent) string { return a.Node.Stats()["latest_configuration"] }

// A node whose machine was replaced: the same id, an empty data dir and a
// new Raft (and HTTP) address. The leader replaces its stale entry: the old
// address leaves the configuration, the id is in it once, and the cluster
// keeps committing throughout.
func TestWipedNodeAtANewAddressReplacesItsStaleEntry(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1h}\n"))
	leader := c.leader(3)
	for i := range 20 {
		if code := heartbeat(t, leader, fmt.Sprintf("before-%d", i)); code != http.StatusOK {
			t.Fatalf("heartbeat: %d", code)
		}
	}
	load := startLoad(c, 2, 20*time.Millisecond)
	lost := c.follower(leader)
	id, oldRaft, gossipAddr := lost.Node.ID(), lost.Node.RaftAddr(), lost.Node.GossipAddr()
	c.stop(lost)
	start := time.Now()
	// Gossip keeps its address: memberlist refuses a known name at a new
	// gossip address until the old one has been dead for 30 s.
	back := c.startAt(id, t.TempDir(), "127.0.0.1:0", gossipAddr, "127.0.0.1:0")
	newRaft := back.Node.RaftAddr()
	if newRaft == oldRaft {
		t.Fatalf("the new Raft address %s is the old one", newRaft)
	}
	var seen []string
	waitFor(t, 60*time.Second, id+" to be a voter at "+newRaft+" with the data", func() bool {
		l := leaderOf(c)
		if l == nil {
			return false
		}
		conf := raftConfiguration(l)
		if n := strings.Count(conf, "ID:"+id+" "); n > 1 {
			t.Fatalf("%s in the configuration %d times: %s", id, n, conf)
		}
		if len(seen) == 0 || seen[len(seen)-1] != conf {
			seen = append(seen, conf)
		}
		return strings.Count(conf, "Suffrage:Voter") == 3 && strings.Contains(conf, "ID:"+id+" Address:"+newRaft+"}") &&
			!strings.Contains(conf, oldRaft) && hasAll(back, "before-", 20)
	})
	t.Logf("%s replaced its stale entry %s after restarting at a new address on an empty disk; configurations seen:\n%s",
		id, time.Since(start).Round(time.Millisecond), strings.Join(seen, "\n"))
	load.stop(t)
	if code := heartbeat(t, back, "after"); code != http.StatusOK {
		t.Fatalf("heartbeat through the replaced node: %d", code)
	}
	leader = c.leader(3)
	if conf := raftConfiguration(leader); strings.Count(conf, "ID:") != 3 || strings.Contains(conf, oldRaft) {
		t.Fatalf("configuration after the replacement: %s", conf)
	}
}

// hasAll reports whether a's replica holds the services prefix0..prefix{n-1}.
func hasAll(a *Agent, prefix string, n int) bool {
	for i := range n {
		if _, ok := serviceOn(a, fmt.Sprintf("%s%d", prefix, i)); !ok {
			return false
		}
	}
	return true
}
