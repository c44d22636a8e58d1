package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// sealWithHeader makes a backup file of snapshot under a header with the
// given numbers, and the checksum that fits them: a hand-made file.
func sealWithHeader(snapshot []byte, version int, index, term uint64, size int64) []byte {
	header, _ := json.Marshal(map[string]any{"magic": backupMagic, "version": version, "index": index,
		"term": term, "size": size, "node": "n1", "created": "2026-12-05T00:00:00Z"})
	out := append(append(header, '\n'), snapshot...)
	sum := sha256.Sum256(out)
	return append(out, fmt.Sprintf("{\"sha256\":%q}\n", hex.EncodeToString(sum[:]))...)
}

// fuzzLeader is a real one-node cluster, started and leading, for the
// whole fuzzing process.
func fuzzLeader(f *testing.F) *Node {
	n, err := New(Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1",
		DataDir: f.TempDir(), BootstrapExpect: 1, FSM: fsm.New()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close() })
	n.Start(func(context.Context, time.Time) {})
	deadline := time.Now().Add(15 * time.Second)
	for n.Ready() != nil {
		if time.Now().After(deadline) {
			f.Fatalf("the node never became ready: %v", n.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// settledIndex is the node's last log index once nothing more is landing:
// the leader's own entries (the barrier that resumes its duties after a
// restore) follow a call's answer by a moment, and the restore must be
// judged against the index it really follows.
func settledIndex(t *testing.T, n *Node) uint64 {
	t.Helper()
	last, same := statIndex(t, n, "last_log_index"), 0
	for deadline := time.Now().Add(5 * time.Second); same < 3 && time.Now().Before(deadline); {
		time.Sleep(30 * time.Millisecond)
		if got := statIndex(t, n, "last_log_index"); got == last {
			same++
		} else {
			last, same = got, 0
		}
	}
	return last
}

func statIndex(t *testing.T, n *Node, key string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(n.Stats()[key], 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return v
}

// FuzzRestoreBackup restores hand-made backups, header numbers at the
// edges and arbitrary snapshots, checksums always fitting, on a real
// one-node cluster. Whatever the file, the restore answers in time, is
// refused with ErrBadBackup alone and then reaches nothing of Raft, or
// lands at the node's own next index; either way the node then commits a
// heartbeat, and a snapshot taken of the state it holds restores (the
// state a node restarts from).
func FuzzRestoreBackup(f *testing.F) {
	good := snapshotOf(f)
	for _, index := range []uint64{0, 7, math.MaxInt64, 1 << 63, math.MaxUint64 - 4, math.MaxUint64} {
		f.Add(good, backupVersion, index, uint64(2), int64(0))
	}
	f.Add(good, backupVersion, uint64(7), uint64(math.MaxUint64), int64(0))
	f.Add(good, backupVersion, uint64(7), uint64(2), int64(1))
	f.Add(good, backupVersion, uint64(7), uint64(2), int64(-1))
	f.Add(good, backupVersion, uint64(7), uint64(2), int64(math.MaxInt64))
	f.Add(good, 0, uint64(7), uint64(2), int64(0))
	for _, seq := range []string{"9223372036854775807", "9223372036854775808", "18446744073709551615"} {
		f.Add(bytes.Replace(good, []byte(`{"v":2,`), []byte(`{"v":2,"seq":`+seq+`,`), 1), backupVersion, uint64(7), uint64(2), int64(0))
	}
	n := fuzzLeader(f)
	f.Fuzz(func(t *testing.T, snapshot []byte, version int, index, term uint64, sizeDelta int64) {
		size := int64(len(snapshot)) + sizeDelta
		if sizeDelta > 0 && size < 0 { // overflowed: keep the extreme
			size = math.MaxInt64
		}
		file := sealWithHeader(snapshot, version, index, term, size)
		last := settledIndex(t, n)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := n.RestoreBackup(ctx, bytes.NewReader(file), nil)
		switch {
		case errors.Is(err, ErrBadBackup):
			if got := statIndex(t, n, "last_log_index"); got != last {
				t.Fatalf("a refused backup moved the log from %d to %d: %v", last, got, err)
			}
		case err != nil:
			t.Fatalf("restore failed other than as a bad backup: %v", err)
		default:
			if got := statIndex(t, n, "last_snapshot_index"); got != last+1 {
				t.Fatalf("restored at index %d, want the node's own next index %d (header index %d)", got, last+1, index)
			}
		}
		if err := n.Heartbeat(ctx, "probe"); err != nil {
			t.Fatalf("no heartbeat committed after the restore: %v", err)
		}
		if got := statIndex(t, n, "last_log_index"); got > last+16 {
			t.Fatalf("the log jumped from %d to %d", last, got)
		}
		meta, rc, err := n.openFreshSnapshot(ctx)
		if err != nil {
			t.Fatalf("snapshot after the restore: %v", err)
		}
		defer rc.Close()
		if err := fsm.New().Restore(rc); err != nil {
			t.Fatalf("the state after the restore does not restore from its snapshot at %d: %v", meta.Index, err)
		}
	})
}
