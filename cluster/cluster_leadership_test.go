package cluster

import (
	"maps"
	"testing"
)

// Three nodes elect one leader with all three as voters. When it stops,
// the two others elect another, which holds everything committed before;
// the old leader comes back as a follower with its place in the
// configuration and catches up on what it missed.
func TestAnotherNodeLeadsWhenTheLeaderStopsAndCommittedStateSurvives(t *testing.T) {
	c := newCluster(t, 3)
	old := c.Leader()
	if conf := suffrages(old); !maps.Equal(conf, map[string]string{"n1": "voter", "n2": "voter", "n3": "voter"}) {
		t.Fatalf("configuration after bootstrap: %v", conf)
	}
	before := []string{"before-1", "before-2", "before-3"}
	c.Beat(c.Followers()[0], before[:2]...)
	c.Beat(old, before[2])
	committed := lastSeen(t, c.Sync(), before...)

	c.Stop(old.ID())
	leader := c.Sync()
	t.Logf("%s took over from %s", leader.ID(), old.ID())
	if got := lastSeen(t, leader, before...); !maps.Equal(got, committed) {
		t.Fatalf("the new leader's state %v, committed before the failover %v", got, committed)
	}
	c.Beat(c.Followers()[0], "after") // two of three still commit

	back := c.Restart(old.ID())
	leader = c.Sync()
	if leader == back {
		t.Logf("%s, restarted, won leadership back", back.ID())
	}
	if got := lastSeen(t, back, before...); !maps.Equal(got, committed) {
		t.Fatalf("%s's state after its restart %v, want %v", back.ID(), got, committed)
	}
	want := lastSeen(t, leader, "after")
	if got := lastSeen(t, back, "after"); !maps.Equal(got, want) {
		t.Fatalf("%s caught up to %v, want %v", back.ID(), got, want)
	}
	if conf := suffrages(leader); len(conf) != 3 || conf[back.ID()] != "voter" {
		t.Fatalf("configuration after the restart: %v", conf)
	}
}
