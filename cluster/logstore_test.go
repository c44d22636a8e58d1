package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestChooseLogStore: a data dir keeps the store it holds; a new one gets
// the configured store, else the default; naming the other store than the
// one held is refused with the file to look at, and so is a data dir with
// both.
func TestChooseLogStore(t *testing.T) {
	withBolt := func(t *testing.T) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, boltFile), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	withWAL := func(t *testing.T) string {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, walDir), 0o750); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	empty := func(t *testing.T) string { return t.TempDir() }
	cases := []struct {
		name       string
		dir        func(*testing.T) string
		configured string
		want       string
		wantErr    string // in the message; the error is ErrLogStoreMismatch
	}{
		{"new, default", empty, "", DefaultLogStore, ""},
		{"new, wal", empty, LogStoreWAL, LogStoreWAL, ""},
		{"new, boltdb", empty, LogStoreBoltDB, LogStoreBoltDB, ""},
		{"bolt kept", withBolt, "", LogStoreBoltDB, ""},
		{"bolt asked", withBolt, LogStoreBoltDB, LogStoreBoltDB, ""},
		{"wal kept", withWAL, "", LogStoreWAL, ""},
		{"wal asked", withWAL, LogStoreWAL, LogStoreWAL, ""},
		{"bolt held, wal asked", withBolt, LogStoreWAL, "", boltFile + "): remove raft_log_store (or set it to boltdb)"},
		{"wal held, bolt asked", withWAL, LogStoreBoltDB, "", walDir + "/): remove raft_log_store (or set it to wal)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			got, err := chooseLogStore(dir, tc.configured)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrLogStoreMismatch) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("chooseLogStore(%s) = %q, %v; want ErrLogStoreMismatch mentioning %q", tc.configured, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("chooseLogStore(%q) = %q, %v; want %q", tc.configured, got, err, tc.want)
			}
		})
	}
	t.Run("both", func(t *testing.T) {
		dir := withBolt(t)
		if err := os.Mkdir(filepath.Join(dir, walDir), 0o750); err != nil {
			t.Fatal(err)
		}
		for _, configured := range []string{"", LogStoreWAL, LogStoreBoltDB} {
			if got, err := chooseLogStore(dir, configured); !errors.Is(err, ErrLogStoreMismatch) {
				t.Errorf("raft.db and wal/ with %q configured: %q, %v; want ErrLogStoreMismatch", configured, got, err)
			}
		}
	})
}

// TestWALRefusesSecondOpener: a second process (or node) on a data dir in
// use fails at once, as BoltDB's does, instead of waiting for the lock.
func TestWALRefusesSecondOpener(t *testing.T) {
	dir := t.TempDir()
	first, err := openLogStore(dir, LogStoreWAL, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openLogStore(dir, LogStoreWAL, hclog.NewNullLogger()); err == nil ||
		!strings.Contains(err.Error(), "another node") {
		t.Fatalf("second open of %s: %v; want a refusal naming another node", dir, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := openLogStore(dir, LogStoreWAL, hclog.NewNullLogger())
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	again.Close()
}

// TestTruncatedEntriesAreGone: after Raft compacts the head of the log,
// both stores answer ErrLogNotFound below the new first index, so a leader
// sends a follower that far behind a snapshot (raft-wal alone would still
// serve them from its open segment).
func TestTruncatedEntriesAreGone(t *testing.T) {
	for _, kind := range []string{LogStoreWAL, LogStoreBoltDB} {
		t.Run(kind, func(t *testing.T) {
			s, err := openLogStore(t.TempDir(), kind, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var logs []*raft.Log
			for i := uint64(1); i <= 10; i++ {
				logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte{byte(i)}})
			}
			if err := s.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRange(1, 6); err != nil {
				t.Fatal(err)
			}
			if first, err := s.FirstIndex(); err != nil || first != 7 {
				t.Fatalf("first index %d, %v; want 7", first, err)
			}
			var l raft.Log
			for i := uint64(1); i <= 6; i++ {
				if err := s.GetLog(i, &l); !errors.Is(err, raft.ErrLogNotFound) {
					t.Errorf("GetLog(%d) after truncating 1-6: %v (index %d); want ErrLogNotFound", i, err, l.Index)
				}
			}
			if err := s.GetLog(7, &l); err != nil || l.Index != 7 || l.Data[0] != 7 {
				t.Errorf("GetLog(7): %v, %+v", err, l)
			}
		})
	}
}

// TestFollowerBroughtUpToDateBySnapshotFollowsOn: a follower whose log the
// leader has compacted past is sent a snapshot, then takes the entries after
// it, on both stores. The WAL takes no gap in its log, so Raft must see that
// it is monotonic (through checkedStore) and empty the log when it installs
// the snapshot; otherwise the follower refuses every later entry.
func TestFollowerBroughtUpToDateBySnapshotFollowsOn(t *testing.T) {
	for _, store := range []string{LogStoreWAL, LogStoreBoltDB} {
		t.Run(store, func(t *testing.T) {
			c := newCluster(t, 3, withConfig(func(cfg *Config) {
				cfg.LogStore = store
				cfg.SnapshotThreshold, cfg.TrailingLogs = 16, 16
			}))
			leader := c.Leader()
			for i := range 30 {
				c.Beat(leader, fmt.Sprintf("a-%d", i))
			}
			id := c.Followers()[0].ID()
			c.Sync()
			c.Stop(id)
			for i := range 200 {
				c.Beat(leader, fmt.Sprintf("b-%d", i))
			}
			if err := leader.Snapshot(); err != nil {
				t.Fatal(err)
			}
			back := c.Restart(id)
			c.waitFor(id+" to install the snapshot", func() bool { return back.FSM().Len() >= 230 })
			for i := range 20 {
				c.Beat(leader, fmt.Sprintf("c-%d", i))
			}
			c.waitFor(id+" to take the entries after the snapshot", func() bool { return back.FSM().Len() == 250 })
		})
	}
}
