package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// usedDataDir is the data dir of a real one-node cluster that committed
// entries, took a snapshot and committed more, then stopped: its log store
// (store) holds a log and a term, snapshots/ one snapshot.
func usedDataDir(t *testing.T, store string) string {
	t.Helper()
	dir := t.TempDir()
	n, err := New(Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1",
		DataDir: dir, FSM: fsm.New(), LogStore: store})
	if err != nil {
		t.Fatal(err)
	}
	leadAlone(t, n)
	apply := func(from, to int) {
		for i := from; i < to; i++ {
			ids := make([]string, 20)
			for j := range ids {
				ids[j] = fmt.Sprintf("service-%d-%d", i, j)
			}
			if _, err := n.Apply(context.Background(), fsm.Heartbeat{At: time.Now().UnixNano(), IDs: ids}); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply(0, 100)
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	apply(100, 200)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o750)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// snapshotFile is the path of file in the data dir's only snapshot.
func snapshotFile(t *testing.T, dir, file string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", file))
	if len(m) != 1 {
		t.Fatalf("want one snapshot's %s in %s, found %v", file, dir, m)
	}
	return m[0]
}

func truncateHalf(t *testing.T, path string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, info.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// scribble overwrites n bytes at off with a pattern no page header has.
func scribble(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := []byte(strings.Repeat("\xde\xad\xbe\xef", n/4))
	if _, err := f.WriteAt(junk, off); err != nil {
		t.Fatal(err)
	}
}

// damage is a way to damage a data dir; it returns the file the error
// must name.
type damage struct {
	name   string
	damage func(t *testing.T, dir string) (file string)
}

// boltDamages are the ways raft.db is damaged. BoltDB's raft.db is read
// page by page.
var boltDamages = []damage{
	{"raft.db truncated", func(t *testing.T, dir string) string {
		p := filepath.Join(dir, "raft.db")
		truncateHalf(t, p)
		return p
	}},
	{"raft.db pages overwritten", func(t *testing.T, dir string) string {
		// Past bolt's two meta pages and its root: the data pages.
		p := filepath.Join(dir, "raft.db")
		scribble(t, p, 4*4096, 64<<10)
		return p
	}},
	{"raft.db gone, snapshot kept", func(t *testing.T, dir string) string {
		p := filepath.Join(dir, "raft.db")
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		return p
	}},
}

// walDamages are the ways wal/ is damaged. Not among them: entries of the
// open segment overwritten, which raft-wal cannot tell from a torn write
// and recovers from by dropping them (docs/performance.md).
var walDamages = []damage{
	{"segment truncated", func(t *testing.T, dir string) string {
		p := walSegment(t, dir)
		truncateHalf(t, p)
		return p
	}},
	{"segment header overwritten", func(t *testing.T, dir string) string {
		scribble(t, walSegment(t, dir), 0, 16)
		return filepath.Join(dir, walDir)
	}},
	{"wal-meta.db overwritten", func(t *testing.T, dir string) string {
		p := filepath.Join(dir, walDir, walMetaFile)
		scribble(t, p, 0, 16<<10)
		return p
	}},
	{"wal-meta.db gone, snapshot kept", func(t *testing.T, dir string) string {
		p := filepath.Join(dir, walDir, walMetaFile)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		return p
	}},
	{"wal/ gone, snapshot kept", func(t *testing.T, dir string) string {
		p := filepath.Join(dir, walDir)
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
		return p
	}},
}

// snapshotDamages are the ways a snapshot is damaged, whatever the store.
var snapshotDamages = []damage{
	{"snapshot truncated", func(t *testing.T, dir string) string {
		p := snapshotFile(t, dir, "state.bin")
		truncateHalf(t, p)
		return p
	}},
	{"snapshot corrupted", func(t *testing.T, dir string) string {
		p := snapshotFile(t, dir, "state.bin")
		scribble(t, p, 16, 8)
		return p
	}},
	{"snapshot meta unreadable", func(t *testing.T, dir string) string {
		p := snapshotFile(t, dir, "meta.json")
		if err := os.WriteFile(p, []byte("{\"ID\": "), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}},
}

// walSegment is the path of the WAL's only segment file in dir.
func walSegment(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, walDir, "*.wal"))
	if len(m) != 1 {
		t.Fatalf("want one segment in %s, found %v", dir, m)
	}
	return m[0]
}

func TestDamagedDataDirIsRefusedNamingTheFileAndWhatToDo(t *testing.T) {
	for store, damages := range map[string][]damage{LogStoreBoltDB: boltDamages, LogStoreWAL: walDamages} {
		t.Run(store, func(t *testing.T) { damagedDataDirsRefused(t, store, append(damages, snapshotDamages...)) })
	}
}

func damagedDataDirsRefused(t *testing.T, store string, damages []damage) {
	pristine := usedDataDir(t, store)
	for _, tc := range damages {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, pristine)
			file := tc.damage(t, dir)
			n, err := New(Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
				HTTPAddr: "127.0.0.1:1", DataDir: dir, FSM: fsm.New(), LogStore: store})
			if err == nil {
				n.Close()
				t.Fatalf("a node started on a data dir whose %s is damaged", file)
			}
			if !errors.Is(err, ErrDamagedStore) {
				t.Fatalf("error is not ErrDamagedStore: %v", err)
			}
			for _, want := range []string{file, "empty data dir", `docs/operations.md, "Replace a node whose disk was lost"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q: %v", want, err)
				}
			}
			t.Log(err)
		})
	}
	// The check refuses only damage: the same data dir undamaged starts,
	// with its state, whatever store is configured (none here).
	f := fsm.New()
	n, err := New(Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:1", DataDir: copyDir(t, pristine), FSM: f})
	if err != nil {
		t.Fatalf("undamaged data dir refused: %v", err)
	}
	defer n.Close()
	if _, ok := f.Service("service-0-0"); !ok {
		t.Error("the undamaged data dir's snapshot was not restored")
	}
}
