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
				c.Beat(leader, fmt.Sprintf("after-%d", i))
			}
			c.Sync()
			if err := behind.storage.err(); err != nil {
				t.Fatalf("the follower's storage after installing a snapshot: %v", err)
			}
			if _, ok := behind.FSM().Service("after-7"); !ok {
				t.Fatal("the follower does not have what was committed after its snapshot")
			}
			// And its data dir starts again: snapshot plus the log after it.
			c.Stop(id)
			behind = c.Restart(id)
			c.Beat(leader, "after-restart")
			c.Sync()
			if _, ok := behind.FSM().Service("after-restart"); !ok {
				t.Fatal("the follower restarted after its snapshot does not follow the leader")
			}
		})
	}
}
