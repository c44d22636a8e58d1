package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// ErrDamagedStore marks a file of the data dir that cannot be trusted: the
// node refuses to start from it rather than run on a log or a snapshot it
// might misread (Raft would panic on a gap in its log, or forget the term it
// voted in).
var ErrDamagedStore = errors.New("cluster: damaged data dir")

// ErrStoreInUse is returned when another process holds raft.db.
var ErrStoreInUse = errors.New("cluster: raft.db is in use")

// replaceAdvice is what to do about a damaged data dir: the replacement of a
// node whose disk was lost, in docs/operations.md.
const replaceAdvice = "this node cannot start from it. Move the data dir aside (keep it to inspect) and start " +
	"the node again with the same command line on an empty data dir: it rejoins under its id and catches up " +
	"from the others. See docs/operations.md, \"Replace a node whose disk was lost\": " +
	"one node at a time, and only while the others have a quorum"

// damagedError names the damaged file and what is wrong with it.
type damagedError struct {
	file, problem string
}

func (e *damagedError) Error() string {
	return fmt.Sprintf("cluster: %s is damaged (%s): %s", e.file, e.problem, replaceAdvice)
}

func (e *damagedError) Is(target error) bool { return target == ErrDamagedStore }

// checkDataDir reads every file Raft will start from, before Raft does:
// every snapshot whole against its checksum and, for a BoltDB log, raft.db
// page by page (the WAL's files are checked as it opens them, under its
// lock: walcheck.go; and every entry of either store is read before Raft
// starts: readWholeLog). A
// truncated or corrupted file is reported as a damagedError instead of the
// panic or fault (bolt maps the file into memory) Raft or bolt would stop
// the process with.
func checkDataDir(dir, kind string) error {
	snaps, err := checkSnapshots(filepath.Join(dir, "snapshots"))
	if err != nil {
		return err
	}
	log := storePath(dir, kind)
	if kind == LogStoreWAL {
		// wal/ holds the directory's lock file from the first start on:
		// the log, term and vote are in its meta store.
		if _, err := os.Stat(log); err == nil {
			log = filepath.Join(log, walMetaFile)
		}
	}
	info, err := os.Stat(log)
	switch {
	case errors.Is(err, fs.ErrNotExist) || (err == nil && kind == LogStoreBoltDB && info.Size() == 0):
		// A new node; or one whose snapshots remain but whose log, term
		// and vote are gone: starting would let it vote twice in a term.
		if snaps > 0 {
			return &damagedError{file: log, problem: fmt.Sprintf("missing or empty while %d snapshots remain", snaps)}
		}
		return nil
	case err != nil:
		return fmt.Errorf("cluster: %w", err)
	case kind == LogStoreWAL:
		return nil
	}
	return checkBolt(log, info.Size())
}

// checkBolt opens raft.db read-only and reads every page of it. Bolt maps
// the file: a page past the end of a truncated file faults, which this
// goroutine turns into a panic it recovers (debug.SetPanicOnFault), as it
// does bolt's own panics on a page it cannot decode.
func checkBolt(path string, size int64) (err error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bbolt.ErrTimeout) {
		return fmt.Errorf("%w (is another node using %s?)", ErrStoreInUse, filepath.Dir(path))
	}
	if err != nil {
		return &damagedError{file: path, problem: err.Error()}
	}
	defer db.Close()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &damagedError{file: path, problem: fmt.Sprintf("unreadable page: %v", r)}
		}
	}()
	return db.View(func(tx *bbolt.Tx) error {
		if want := tx.Size(); size < want {
			return &damagedError{file: path, problem: fmt.Sprintf("truncated: %d bytes, its header says %d", size, want)}
		}
		return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error { return walkBucket(b) })
	})
}

// walkBucket reads every key and value of b and of the buckets in it.
func walkBucket(b *bbolt.Bucket) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if inner := b.Bucket(k); inner != nil {
				if err := walkBucket(inner); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// snapshotMeta is the part of Raft's meta.json (FileSnapshotStore) that
// says what state.bin must be.
type snapshotMeta struct {
	ID   string
	Size int64
	CRC  []byte
}

// checkSnapshots checks every snapshot Raft kept (not the .tmp ones it was
// still writing, which Raft ignores) and returns how many there are.
func checkSnapshots(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cluster: snapshots: %w", err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		n++
		if err := checkSnapshot(filepath.Join(dir, e.Name())); err != nil {
			return n, err
		}
	}
	return n, nil
}

func checkSnapshot(dir string) error {
	metaFile, stateFile := filepath.Join(dir, "meta.json"), filepath.Join(dir, "state.bin")
	b, err := os.ReadFile(metaFile)
	if err != nil {
		return &damagedError{file: metaFile, problem: err.Error()}
	}
	var meta snapshotMeta
	if err := json.Unmarshal(b, &meta); err != nil || len(meta.CRC) == 0 {
		return &damagedError{file: metaFile, problem: fmt.Sprintf("unreadable: %v", err)}
	}
	f, err := os.Open(stateFile)
	if err != nil {
		return &damagedError{file: stateFile, problem: err.Error()}
	}
	defer f.Close()
	sum := crc64.New(crc64.MakeTable(crc64.ECMA))
	n, err := io.Copy(sum, f)
	switch {
	case err != nil:
		return &damagedError{file: stateFile, problem: err.Error()}
	case n != meta.Size:
		return &damagedError{file: stateFile, problem: fmt.Sprintf("%d bytes where meta.json says %d", n, meta.Size)}
	case !bytes.Equal(sum.Sum(nil), meta.CRC):
		return &damagedError{file: stateFile, problem: "checksum does not match meta.json"}
	}
	return nil
}
