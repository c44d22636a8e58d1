package cluster

import (
	"fmt"
	"testing"
	"time"
)

// A follower so far behind that the leader sends it a snapshot installs it
// and goes on appending. The WAL refuses an append that leaves a gap after
// its last entry, so Raft must see it as a monotonic store (and then drop
// the whole old log on install, not only a prefix), through every wrapper
// around it.
func TestAFollowerThatInstallsASnapshotKeepsAppending(t *testing.T) {
	for _, store := range []string{LogStoreWAL, LogStoreBoltDB} {
		t.Run(store, func(t *testing.T) {
			c := newCluster(t, 3, withConfig(func(cfg *Config) {
				cfg.LogStore = store
				cfg.SnapshotThreshold, cfg.TrailingLogs = 16, 4
				cfg.SnapshotInterval = 50 * time.Millisecond
			}))
			leader := c.Leader()
			behind := c.Followers()[0]
			id := behind.ID()
			c.Stop(id)
			for i := range 64 {
				c.Beat(leader, fmt.Sprintf("svc-%d", i))
			}
			c.waitFor("the leader to compact its log past what the stopped follower holds", func() bool {
				first, err := leader.store.FirstIndex()
				return err == nil && first > 40
			})
			behind = c.Restart(id)
			for i := range 8 {
				c.Beat(c.Leader(), fmt.Sprintf("after-%d", i))
			}
			// Polled, not Sync: on a loaded machine the leadership may
			// move, and a new leader may not have applied all yet.
			c.waitFor("the follower to apply what was committed after its snapshot", func() bool {
				_, ok := behind.FSM().Service("after-7")
				return ok
			})
			if err := behind.storage.err(); err != nil {
				t.Fatalf("the follower's storage after installing a snapshot: %v", err)
			}
			// And its data dir starts again: snapshot plus the log after it.
			c.Stop(id)
			behind = c.Restart(id)
			c.Beat(c.Leader(), "after-restart")
			c.waitFor("the restarted follower to follow the leader", func() bool {
				_, ok := behind.FSM().Service("after-restart")
				return ok
			})
		})
	}
}
