package main

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/config"
)

// TestLogStoreSurvivesRestart: a cluster created on BoltDB (as every build
// before the WAL became the default wrote it: raft.db) is restarted node by
// node without naming a store, as after the upgrade to a build whose
// default is the WAL: each node finds raft.db, keeps using it, keeps its
// state and catches up; no wal/ appears beside it. Naming the WAL for that
// data dir is refused, naming raft.db, and leaves the data dir as it was.
func TestLogStoreSurvivesRestart(t *testing.T) {
	bolt := func(cc *cluster.Config) { cc.LogStore = cluster.LogStoreBoltDB }
	c := newTestCluster(t, 3, fileConfig(t, "defaults: {timeout: 1h}\n"), bolt)
	leader := c.leader(3)
	var follower *Agent
	for _, a := range c.running() {
		if a != leader {
			follower = a
		}
	}
	id, raftAddr, gossipAddr, httpAddr := follower.Node.ID(), follower.Node.RaftAddr(), follower.Node.GossipAddr(), follower.Addr
	dataDir := follower.dataDir
	for i := range 10 {
		if code := heartbeat(t, leader, "before-"+strconv.Itoa(i)); code != http.StatusOK {
			t.Fatalf("heartbeat: %d", code)
		}
	}
	waitFor(t, 10*time.Second, id+" to apply the heartbeats", func() bool { return follower.FSM.Len() == 10 })
	c.stop(follower)

	// Asked for the other store: refused, with the file that holds the log.
	cfg := &config.AgentConfig{NodeID: id, HTTPAddr: httpAddr, RaftAddr: raftAddr, GossipAddr: gossipAddr,
		DataDir: dataDir, File: c.file, LogStore: cluster.LogStoreWAL, OpenManagement: true}
	if a, err := StartAgent(cfg, testLogger(t)); err == nil {
		a.Close()
		t.Fatalf("started %s with raft_log_store wal on a BoltDB data dir", id)
	} else if !errors.Is(err, cluster.ErrLogStoreMismatch) || !strings.Contains(err.Error(), filepath.Join(dataDir, "raft.db")) {
		t.Fatalf("start with the other store: %v; want ErrLogStoreMismatch naming %s", err, filepath.Join(dataDir, "raft.db"))
	}
	noWAL(t, dataDir)

	for i := range 10 {
		if code := heartbeat(t, leader, "while-down-"+strconv.Itoa(i)); code != http.StatusOK {
			t.Fatalf("heartbeat with one node down: %d", code)
		}
	}
	// No store named: the data dir's own is used, and the node catches up.
	back := c.startAt(id, dataDir, raftAddr, gossipAddr, httpAddr)
	if got := back.Node.LogStore(); got != cluster.LogStoreBoltDB {
		t.Fatalf("%s restarted on %q, want %q (its data dir holds raft.db)", id, got, cluster.LogStoreBoltDB)
	}
	waitFor(t, 10*time.Second, id+" to catch up", func() bool { return back.FSM.Len() == 20 })
	noWAL(t, dataDir)
	for _, a := range c.running() {
		if got := a.Node.LogStore(); got != cluster.LogStoreBoltDB {
			t.Errorf("%s uses %q, want %q", a.Node.ID(), got, cluster.LogStoreBoltDB)
		}
	}
}

// TestNewDataDirGetsTheDefaultAndAWALDataDirKeepsIt: a node without a
// store named creates the default, the WAL, and keeps it across a restart
// that names no store, with its state, and refuses to open the data dir
// as BoltDB.
func TestNewDataDirGetsTheDefaultAndAWALDataDirKeepsIt(t *testing.T) {
	c := newTestCluster(t, 1, fileConfig(t, "defaults: {timeout: 1h}\n"))
	a := c.leader(1)
	if got := a.Node.LogStore(); got != cluster.LogStoreWAL {
		t.Fatalf("a new data dir got %q, want the default %q", got, cluster.LogStoreWAL)
	}
	if code := heartbeat(t, a, "kept"); code != http.StatusOK {
		t.Fatalf("heartbeat: %d", code)
	}
	id, raftAddr, gossipAddr, httpAddr, dataDir := a.Node.ID(), a.Node.RaftAddr(), a.Node.GossipAddr(), a.Addr, a.dataDir
	c.stop(a)
	if _, err := os.Stat(filepath.Join(dataDir, "raft.db")); err == nil {
		t.Fatalf("raft.db beside the WAL in %s", dataDir)
	}
	cfg := &config.AgentConfig{NodeID: id, HTTPAddr: httpAddr, RaftAddr: raftAddr, GossipAddr: gossipAddr,
		DataDir: dataDir, File: c.file, LogStore: cluster.LogStoreBoltDB, OpenManagement: true}
	if b, err := StartAgent(cfg, testLogger(t)); err == nil {
		b.Close()
		t.Fatalf("started %s with raft_log_store boltdb on a WAL data dir", id)
	} else if !errors.Is(err, cluster.ErrLogStoreMismatch) || !strings.Contains(err.Error(), filepath.Join(dataDir, "wal")) {
		t.Fatalf("start with the other store: %v; want ErrLogStoreMismatch naming %s", err, filepath.Join(dataDir, "wal"))
	}
	if _, err := os.Stat(filepath.Join(dataDir, "raft.db")); err == nil {
		t.Fatalf("the refused start left raft.db in %s", dataDir)
	}
	back := c.startAt(id, dataDir, raftAddr, gossipAddr, httpAddr)
	if got := back.Node.LogStore(); got != cluster.LogStoreWAL {
		t.Fatalf("restarted on %q, want %q", got, cluster.LogStoreWAL)
	}
	c.leader(1)
	waitFor(t, 10*time.Second, "the state back from the WAL", func() bool { _, ok := serviceOn(back, "kept"); return ok })
}

func noWAL(t *testing.T, dataDir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dataDir, "wal")); err == nil {
		t.Fatalf("wal/ appeared beside raft.db in %s", dataDir)
	}
}
