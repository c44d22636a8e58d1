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
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/types"
	"github.com/watchdog-ha/watchdog/internal/disktest"
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

// smallSegments makes a segment hold about 15 entries of walEntry's size.
var smallSegments = walSegments{size: 64 << 10}

func walEntry(i uint64) *raft.Log {
	data := make([]byte, 4000)
	copy(data, fmt.Sprint(i))
	return &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: data}
}

func openTestWAL(t *testing.T, dir string) *walStore {
	t.Helper()
	return openTestWALWith(t, dir, smallSegments)
}

func openTestWALWith(t *testing.T, dir string, seg walSegments) *walStore {
	t.Helper()
	s, err := openWAL(dir, seg, hclog.NewNullLogger(), func() {})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// walMeta is the WAL's persisted segment list; the WAL must be closed.
func walMeta(t *testing.T, dir string) types.PersistentState {
	t.Helper()
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	state, err := meta.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// checkWALHolds checks the store holds entries 1..last, each intact.
func checkWALHolds(t *testing.T, s *walStore, last uint64) {
	t.Helper()
	if got, err := s.LastIndex(); err != nil || got != last {
		t.Fatalf("last index %d, %v; want %d", got, err, last)
	}
	for i := uint64(1); i <= last; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil || string(l.Data[:len(fmt.Sprint(i))]) != fmt.Sprint(i) {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
}

// TestWALCompletesAnInterruptedRotation: a process that dies after the
// append that seals a segment and before raft-wal's background rotation
// commits the new segment list (kill -9; or a rotation that fails on a
// full disk) leaves the sealed file listed as the open tail. raft-wal
// alone then refuses every append after a restart (ErrSealed) — a node
// that can never write again. Every segment rotation of a growing log is
// interrupted here that way; the store must open with every entry and
// take the next.
func TestWALCompletesAnInterruptedRotation(t *testing.T) {
	dir := t.TempDir()
	interrupted := 0
	for i := uint64(1); i <= 60; i++ {
		before, err := os.ReadFile(filepath.Join(dir, "wal-meta.db"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		s := openTestWAL(t, dir)
		if err := s.StoreLogs([]*raft.Log{walEntry(i)}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if before == nil {
			continue
		}
		// Did this append seal the tail it was written to? Then put back
		// the segment list from before it: the rotation never committed.
		old := filepath.Join(t.TempDir(), "wal-meta.db")
		if err := os.WriteFile(old, before, 0o600); err != nil {
			t.Fatal(err)
		}
		state := walMeta(t, filepath.Dir(old))
		tail := state.Segments[len(state.Segments)-1]
		if sealed, _, _, err := segmentSealed(dir, tail); err != nil || !sealed {
			continue
		}
		interrupted++
		if err := os.WriteFile(filepath.Join(dir, "wal-meta.db"), before, 0o600); err != nil {
			t.Fatal(err)
		}
		if interrupted == 1 {
			requireRawWALSealed(t, dir, i+1)
		}
		s = openTestWAL(t, dir)
		checkWALHolds(t, s, i)
		s.Close()
	}
	if interrupted < 3 {
		t.Fatalf("only %d rotations interrupted; the entries do not fill the segments", interrupted)
	}
	s := openTestWAL(t, dir)
	defer s.Close()
	checkWALHolds(t, s, 60)
	if err := s.StoreLogs([]*raft.Log{walEntry(61)}); err != nil {
		t.Fatal(err)
	}
}

// requireRawWALSealed shows the state is the one raft-wal cannot leave by
// itself: opened as it is, it refuses the next append.
func requireRawWALSealed(t *testing.T, dir string, next uint64) {
	t.Helper()
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithMetaStore(meta), wal.WithSegmentSize(smallSegments.size))
	if err != nil {
		t.Fatal(err)
	}
	err = w.StoreLogs([]*raft.Log{walEntry(next)})
	w.Close()
	meta.Close()
	if !errors.Is(err, wal.ErrSealed) {
		t.Fatalf("raft-wal on an interrupted rotation: append %v; want ErrSealed (the test no longer reproduces it)", err)
	}
}

// TestWALOnAFullDiskFailsAppendsAndRecovers fills the disk at points all
// through a segment's life (mid-segment, as it seals, as the next one is
// created). On the sparse segments a node uses, the first append that finds
// no space fails, so the node notices at once, as on BoltDB. Preallocated
// segments (raft-wal's default) write on into the space they reserved until
// the next segment cannot be created; raft-wal then refuses every append
// (ErrSealed) until it is opened again, which walStore does. Either way,
// once space returns the same append succeeds, without a restart, and every
// entry acknowledged is there after a reopen.
func TestWALOnAFullDiskFailsAppendsAndRecovers(t *testing.T) {
	for spare := int64(0); spare <= 136<<10; spare += 8 << 10 {
		t.Run(fmt.Sprintf("sparse/spare=%dKiB", spare>>10), func(t *testing.T) {
			_ = fullDiskAppends(t, smallSegments, spare, spare/4096+2)
		})
	}
	// Space for the seal of the segment being written, not for the next
	// segment: the rotation fails.
	prealloc := walSegments{size: 1 << 20, preallocate: true}
	for _, spare := range []int64{64 << 10, 512 << 10} {
		t.Run(fmt.Sprintf("preallocated/spare=%dKiB", spare>>10), func(t *testing.T) {
			log := fullDiskAppends(t, prealloc, spare, (spare+int64(prealloc.size))/4096+2)
			if !strings.Contains(log, "WAL reopened to complete a segment rotation") {
				t.Fatalf("the rotation did not fail, or the WAL was not reopened; its log:\n%s", log)
			}
		})
	}
}

// fullDiskAppends runs the test on seg with the disk filled to spare
// bytes, allowing that many appends on it; it returns the WAL's log.
func fullDiskAppends(t *testing.T, seg walSegments, spare, allowed int64) string {
	dir := t.TempDir()
	disktest.Mount(t, dir, max(2<<20, 4*seg.size))
	var log strings.Builder
	s, err := openWAL(dir, seg, hclog.New(&hclog.LoggerOptions{Output: &log}), func() {})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	next := uint64(1)
	for ; next <= 20; next++ {
		if err := s.StoreLogs([]*raft.Log{walEntry(next)}); err != nil {
			t.Fatal(err)
		}
	}
	filler := disktest.Fill(t, dir, spare)
	var failed error
	for ok := int64(0); failed == nil; ok++ {
		if failed = s.StoreLogs([]*raft.Log{walEntry(next)}); failed == nil {
			next++
		}
		if ok > allowed {
			t.Fatalf("%d appends succeeded on a full disk (%d bytes spare)", ok, spare)
		}
	}
	t.Logf("append %d on the full disk: %v", next, failed)
	if err := s.StoreLogs([]*raft.Log{walEntry(next)}); err == nil {
		t.Fatalf("append %d succeeded on the disk still full", next)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for end := next + 40; next < end; next++ {
		if err := s.StoreLogs([]*raft.Log{walEntry(next)}); err != nil {
			t.Fatalf("append %d once space returned: %v", next, err)
		}
	}
	checkWALHolds(t, s, next-1)
	s.Close()
	s = openTestWALWith(t, dir, seg)
	checkWALHolds(t, s, next-1)
	return log.String()
}
