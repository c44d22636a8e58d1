package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cli"
	"github.com/watchdog-ha/watchdog/fsm"
)

func TestLeaderHandsOverOnShutdownAndAFollowerKeepsItsPlace(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1h}\n"))
	leader := c.leader(3)

	// Handover alone: another node leads while this one still runs, which
	// only a transfer does (nothing timed out).
	old := leader.Node.ID()
	wait := newLeaderAfter(c, old)
	if err := leader.Node.Handover(context.Background()); err != nil {
		t.Fatalf("handover: %v", err)
	}
	took := wait()
	if took < 0 || leader.Node.IsLeader() {
		t.Fatalf("after the handover %s still leads", old)
	}
	t.Logf("handover while running: new leader after %s", took.Round(time.Millisecond))

	// A follower's shutdown (SIGTERM) changes no configuration, however
	// long it stays down: a restart is not a decommission.
	leader = c.leader(3)
	follower := c.follower(leader)
	id, dir, raftAddr, gossipAddr, httpAddr := follower.Node.ID(), follower.dataDir, follower.Node.RaftAddr(), follower.Node.GossipAddr(), follower.Addr
	c.shutdown(follower)
	waitFor(t, 10*time.Second, "the leader to find "+follower.Node.ID()+" unreachable", func() bool {
		for _, m := range leader.Node.Members() {
			if m.ID == follower.Node.ID() {
				return m.StatusError != ""
			}
		}
		return false
	})
	if conf := suffrages(leader); len(conf) != 3 || conf[follower.Node.ID()] != "voter" {
		t.Fatalf("configuration with a follower shut down: %v", conf)
	}
	c.startAt(id, dir, raftAddr, gossipAddr, httpAddr)

	// The leader's shutdown: a transfer, then the stop; it keeps its place.
	leader = c.leader(3)
	old = leader.Node.ID()
	wait = newLeaderAfter(c, old)
	c.shutdown(leader)
	graceful := wait()
	next := c.leader(3)
	if conf := suffrages(next); conf[old] != "voter" {
		t.Fatalf("configuration after the leader's shutdown: %v", conf)
	}
	t.Logf("leader %s shut down: new leader %s after %s", old, next.Node.ID(), graceful.Round(time.Millisecond))
}

func TestClusterViewShowsEveryNodesRaftAndGossipState(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1h}\n"))
	leader := c.leader(3)
	follower := c.follower(leader)
	heartbeat(t, leader, "seen")
	var cl apiCluster
	waitFor(t, 10*time.Second, "every node's status in /v1/cluster", func() bool {
		if getJSON(t, "http://"+follower.Addr+"/v1/cluster", &cl) != 200 || len(cl.Nodes) != 3 {
			return false
		}
		// A poll may have reached a node before it applied anything.
		for _, n := range cl.Nodes {
			if n.StatusError != "" || n.Lag == nil || n.AppliedIndex == 0 {
				return false
			}
		}
		return true
	})
	states := map[string]int{}
	for _, n := range cl.Nodes {
		states[n.RaftState]++
		if n.Suffrage != "voter" || n.Gossip != "alive" || n.Protocol != fsm.ProtocolVersion || n.AppliedIndex == 0 || n.LastContactMS == nil || *n.Lag > 10 {
			b, _ := json.Marshal(n)
			t.Fatalf("node in /v1/cluster: %s", b)
		}
	}
	if states["Leader"] != 1 || states["Follower"] != 2 {
		t.Fatalf("raft states %v", states)
	}
	out := mustCLI(t, cli.ExitOK, "members", "-addr", follower.Addr)
	if !strings.HasPrefix(out, "NODE  HTTP") || strings.Count(out, " Follower ") != 2 || strings.Count(out, " Leader ") != 1 {
		t.Fatalf("members:\n%s", out)
	}
	t.Logf("watchdog members:\n%s", out)

	c.stop(follower)
	waitFor(t, 10*time.Second, "the stopped node to show unreachable", func() bool {
		out = mustCLI(t, cli.ExitOK, "members", "-addr", leader.Addr)
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, follower.Node.ID()+" ") {
				return strings.Contains(line, " unreachable ")
			}
		}
		return false
	})
}
