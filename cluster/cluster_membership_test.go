package cluster

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// A node that joins through gossip is added by the leader as a non-voter,
// promoted once it has caught up, and then takes heartbeats like the
// others.
func TestANewNodeIsAddedAndPromotedOnceCaughtUp(t *testing.T) {
	c := newCluster(t, 3)
	c.Beat(c.Leader(), "before")
	n4 := c.Add()
	c.waitFor("n4 to be a voter", func() bool { return c.configuration()["n4"] == "voter" })
	if steps := c.configChanges("n4"); !slices.Equal(steps, []string{"add non-voter", "promote to voter"}) {
		t.Fatalf("n4 became a voter by %q; want an addition as a non-voter, then a promotion", steps)
	}
	leader := c.Sync()
	if got, want := lastSeen(t, n4, "before"), lastSeen(t, leader, "before"); !maps.Equal(got, want) {
		t.Fatalf("n4 caught up to %v, want %v", got, want)
	}
	c.Beat(n4, "via-n4")
	lastSeen(t, c.Sync(), "via-n4")
}

// A node that stays dead in gossip for ReapAfter is removed from the
// configuration by the leader, and the others go on committing.
func TestADeadNodeIsRemovedAfterReapAfter(t *testing.T) {
	c := newCluster(t, 3, withConfig(func(cfg *Config) { cfg.ReapAfter = time.Second }))
	dead := c.Followers()[0]
	c.Stop(dead.ID())
	stopped := time.Now()
	// Gossip takes its probe timeouts and a suspicion period to declare a
	// node dead: longer than the fixture's usual waits.
	waitUntil(t, 2*clusterWait, dead.ID()+" to be removed", func() bool {
		conf := c.configuration()
		_, in := conf[dead.ID()]
		return conf != nil && !in
	})
	t.Logf("%s removed %s after it stopped", time.Since(stopped).Round(time.Millisecond), dead.ID())
	removed := c.log.lines(`msg="remove server"`, "id="+dead.ID())
	for _, line := range removed {
		if !strings.Contains(line, `reason="dead for`) {
			t.Fatalf("%s removed for another reason than being dead longer than ReapAfter: %s", dead.ID(), line)
		}
	}
	if steps := c.configChanges(dead.ID()); !slices.Equal(steps, []string{"remove server"}) {
		t.Fatalf("configuration changes for %s: %q, want its removal", dead.ID(), steps)
	}
	if conf := c.configuration(); len(conf) != 2 {
		t.Fatalf("configuration after the removal: %v", conf)
	}
	c.Beat(c.Followers()[0], "after")
}

// A member is removed on request only once it cannot be hurt by it: the
// leader refuses to remove itself or a node that answers; a stopped one
// goes as soon as it stops answering its status polls.
func TestRemoveMemberRemovesOnlyAStoppedFollower(t *testing.T) {
	c := newCluster(t, 3)
	leader, follower := c.Leader(), c.Followers()[0]
	ctx, cancel := context.WithTimeout(t.Context(), clusterWait)
	defer cancel()
	if _, err := follower.RemoveMember(ctx, leader.ID(), RemoveOptions{}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("removal asked of a follower: %v, want ErrNotLeader", err)
	}
	for _, id := range []string{leader.ID(), follower.ID()} {
		if _, err := leader.RemoveMember(ctx, id, RemoveOptions{}); !errors.Is(err, ErrRefused) {
			t.Fatalf("removal of %s, which is alive: %v, want ErrRefused", id, err)
		}
	}
	if _, err := leader.RemoveMember(ctx, "n9", RemoveOptions{}); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("removal of a stranger: %v, want ErrUnknownMember", err)
	}
	c.Stop(follower.ID())
	c.waitFor(follower.ID()+"'s removal to be accepted", func() bool {
		removed, err := leader.RemoveMember(ctx, follower.ID(), RemoveOptions{})
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Fatalf("removal of stopped %s: %v", follower.ID(), err)
		}
		return removed
	})
	if conf := suffrages(leader); len(conf) != 2 || conf[follower.ID()] != "" {
		t.Fatalf("configuration after the removal: %v", conf)
	}
}

// A follower that leaves is removed by the time Leave returns (the leader
// asks it first, over the internal routes, whether it is leaving); a
// leader that leaves hands leadership over first.
func TestLeavingNodesAreRemoved(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), clusterWait)
	defer cancel()
	leader, follower := c.Leader(), c.Followers()[0]
	if err := follower.Leave(ctx, LeaveOptions{}); err != nil {
		t.Fatalf("%s leaving: %v", follower.ID(), err)
	}
	requireLeft(t, follower)
	if conf := suffrages(leader); len(conf) != 2 || conf[follower.ID()] != "" {
		t.Fatalf("configuration once %s has left: %v", follower.ID(), conf)
	}
	c.Stop(follower.ID()) // as the agent does once it has left

	if err := leader.Leave(ctx, LeaveOptions{}); err != nil {
		t.Fatalf("leader %s leaving: %v", leader.ID(), err)
	}
	requireLeft(t, leader)
	if leader.IsLeader() {
		t.Fatalf("%s left the cluster still leading it", leader.ID())
	}
	c.Stop(leader.ID())
	last := c.Leader()
	if conf := suffrages(last); !maps.Equal(conf, map[string]string{last.ID(): "voter"}) {
		t.Fatalf("configuration after both left: %v", conf)
	}
	c.Beat(last, "alone")
}

// requireLeft fails the test unless n says it has left the cluster.
func requireLeft(t *testing.T, n *Node) {
	t.Helper()
	select {
	case <-n.Left():
	default:
		t.Fatalf("%s's Leave returned, but Left is not closed", n.ID())
	}
}
