package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// The Raft log stores a node can keep its log and stable state in. Each
// holds both: Raft's term and vote must live with the log they describe,
// so a data dir holds exactly one of them.
const (
	// LogStoreWAL is hashicorp/raft-wal: append-only segment files, one
	// fdatasync per append, and a small BoltDB file (wal/wal-meta.db) for
	// the stable state and the segment list.
	LogStoreWAL = "wal"
	// LogStoreBoltDB is hashicorp/raft-boltdb/v2: one B+tree file,
	// raft.db, two fdatasyncs per append; what every build before the WAL
	// used.
	LogStoreBoltDB = "boltdb"
	// DefaultLogStore is the store of a new data dir. A data dir that holds
	// a log already keeps its store, whatever the default, so a raft.db
	// written by an older build goes on as BoltDB. The WAL is the default:
	// it costs less CPU per heartbeat and commits sooner (one fdatasync per
	// append against two; docs/performance.md), and it is held to what
	// BoltDB is (walstore.go, walcheck.go): a full disk fails the first
	// append that finds no space and the node recovers when space returns,
	// a rotation interrupted by a full disk or kill -9 is completed, and a
	// damaged data dir is refused; the storage tests run on both stores.
	DefaultLogStore = LogStoreWAL
)

// ErrLogStoreMismatch is returned when the data dir holds a log in another
// store than the one configured: opening the configured one would start an
// empty log beside the real one.
var ErrLogStoreMismatch = errors.New("cluster: the data dir holds another log store")

// Where each store lives in the data dir.
const (
	boltFile = "raft.db"
	walDir   = "wal"
	// walLock is held while a node uses wal/: the WAL's own meta file
	// would make a second process on the same data dir wait forever.
	walLock = "LOCK"
)

// ValidLogStore reports whether name is a log store ("" is not).
func ValidLogStore(name string) bool { return name == LogStoreWAL || name == LogStoreBoltDB }

// logStore is a Raft log and stable store that must be closed after Raft
// has shut down.
type logStore interface {
	raft.LogStore
	raft.StableStore
	Close() error
}

// DetectLogStore reports which store dataDir holds a log in: LogStoreBoltDB
// for raft.db, LogStoreWAL for wal/, "" for neither (a new data dir).
func DetectLogStore(dataDir string) (string, error) {
	bolt, err := exists(filepath.Join(dataDir, boltFile))
	if err != nil {
		return "", err
	}
	w, err := exists(filepath.Join(dataDir, walDir))
	if err != nil {
		return "", err
	}
	switch {
	case bolt && w:
		return "", fmt.Errorf("%w: %s holds both %s and %s/; a node uses one: "+
			"move the one it did not use last (see the log of its last start) out of the way",
			ErrLogStoreMismatch, dataDir, boltFile, walDir)
	case bolt:
		return LogStoreBoltDB, nil
	case w:
		return LogStoreWAL, nil
	}
	return "", nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("cluster: data dir: %w", err)
}

// chooseLogStore decides the store: the one the data dir holds, else the
// configured one, else the default. A data dir that holds the other store
// than the one configured is refused, never opened beside it.
func chooseLogStore(dataDir, configured string) (string, error) {
	held, err := DetectLogStore(dataDir)
	if err != nil {
		return "", err
	}
	switch {
	case held != "" && configured != "" && held != configured:
		return "", fmt.Errorf("%w: raft_log_store is %s, but %s holds a %s log (%s): "+
			"remove raft_log_store (or set it to %s) to keep this data dir; to switch stores, "+
			"move the data dir away and start the node empty, as when its disk is lost: "+
			"it rejoins and the leader sends it the state", ErrLogStoreMismatch, configured, dataDir, held,
			storePath(dataDir, held), held)
	case held != "":
		return held, nil
	case configured != "":
		return configured, nil
	}
	return DefaultLogStore, nil
}

func storePath(dataDir, store string) string {
	if store == LogStoreWAL {
		return filepath.Join(dataDir, walDir) + string(filepath.Separator)
	}
	return filepath.Join(dataDir, boltFile)
}

// openLogStore opens (or creates) the store kind in dataDir.
func openLogStore(dataDir, kind string, log hclog.Logger) (logStore, error) {
	if kind == LogStoreBoltDB {
		store, err := raftboltdb.New(raftboltdb.Options{
			Path: filepath.Join(dataDir, boltFile),
			// Without a timeout a second process on the same data dir would
			// hang forever on bolt's file lock instead of failing.
			BoltOptions: &bbolt.Options{Timeout: time.Second, NoFreelistSync: true},
		})
		if err != nil {
			return nil, fmt.Errorf("cluster: open %s (is another node using %s?): %w", boltFile, dataDir, err)
		}
		return store, nil
	}
	dir := filepath.Join(dataDir, walDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", dir, err)
	}
	unlock, err := lockDir(filepath.Join(dir, walLock))
	if err != nil {
		return nil, fmt.Errorf("cluster: lock %s (is another node using %s?): %w", dir, dataDir, err)
	}
	store, err := openWAL(dir, walSegments{size: walSegmentSize}, log, unlock)
	if err != nil {
		unlock()
		return nil, err
	}
	return store, nil
}
