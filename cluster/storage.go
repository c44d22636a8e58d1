package cluster

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrStorage marks an error of this node's data dir: a write to the log store or a
// snapshot failed (a full disk, an I/O error). Whatever the write was for was
// not made durable here, so it was not acknowledged.
var ErrStorage = errors.New("cluster: storage failing")

// What failed, as the op label of watchdog_disk_write_errors_total.
const (
	storeOpLog      = "log"      // entries appended to the log
	storeOpStable   = "stable"   // term and vote in the log store
	storeOpSnapshot = "snapshot" // a snapshot written under snapshots/
)

// storageHealth is what this node knows of its own writes. It is failing
// from a failed write of the log store until an append of entries succeeds again:
// appends are what a full disk refuses first (they need new blocks: pages
// of raft.db, blocks of the WAL's sparse segment; a term or vote rewrites
// pages bolt has free), and what the leader retries
// on its own once space returns, so recovery needs no operator.
//
// A failed snapshot is counted and logged but leaves the node ready: its
// entries are still durable; only compaction waits for the next snapshot.
type storageHealth struct {
	log    logger
	errors *prometheus.CounterVec
	byOp   map[string]prometheus.Counter

	mu      sync.Mutex
	failing error     // the first failure since the last good append, or nil
	since   time.Time // when failing began
}

func newStorageHealth(log logger) *storageHealth {
	h := &storageHealth{log: log, byOp: map[string]prometheus.Counter{},
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchdog_disk_write_errors_total",
			Help: "Writes to this node's data dir that failed (a full disk, an I/O error), by what was written: log (entries), stable (term and vote) or snapshot.",
		}, []string{"op"})}
	for _, op := range []string{storeOpLog, storeOpStable, storeOpSnapshot} {
		h.byOp[op] = h.errors.WithLabelValues(op)
	}
	return h
}

// appended records the outcome of an append of entries: a good one ends a
// failure.
func (h *storageHealth) appended(err error) error {
	if err == nil {
		h.recovered()
		return nil
	}
	return h.wrote(storeOpLog, err)
}

// wrote records the outcome of a write and returns err marked ErrStorage.
func (h *storageHealth) wrote(op string, err error) error {
	if err == nil {
		return nil
	}
	h.byOp[op].Inc()
	h.mu.Lock()
	first := h.failing == nil && op != storeOpSnapshot
	if first {
		h.failing, h.since = err, time.Now()
	}
	h.mu.Unlock()
	switch {
	case first:
		h.log.Error("storage failing: this node takes no entries until a write succeeds again; free space in the data dir",
			"op", op, "err", err)
	case op == storeOpSnapshot:
		h.log.Error("storage failing: snapshot not written, the log is not compacted until one is", "err", err)
	}
	return fmt.Errorf("%w: %s write: %w", ErrStorage, op, err)
}

func (h *storageHealth) recovered() {
	h.mu.Lock()
	was, since := h.failing, h.since
	h.failing = nil
	h.mu.Unlock()
	if was != nil {
		h.log.Info("storage recovered: entries are written again", "failing_for", time.Since(since).Round(time.Millisecond))
	}
}

// err says why this node's storage is not healthy, or nil.
func (h *storageHealth) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failing == nil {
		return nil
	}
	return fmt.Errorf("%w: writes to the data dir failing for %s: %w", ErrStorage,
		time.Since(h.since).Round(time.Second), h.failing)
}

// raftStore is the log and stable store Raft writes through.
type raftStore interface {
	raft.LogStore
	raft.StableStore
}

// checkedStore reports the outcome of every write of the store it wraps.
type checkedStore struct {
	raftStore
	health *storageHealth
}

// IsMonotonic passes on whether the store wrapped takes no gaps in its log
// (raft.MonotonicLogStore: the WAL). Raft then empties the log when it
// installs a snapshot; hidden behind this wrapper, it kept the entries
// below the snapshot, and a WAL follower brought up to date by a snapshot
// refused every entry after it ("non-monotonic log entries") for good.
func (s checkedStore) IsMonotonic() bool {
	m, ok := s.raftStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (s checkedStore) StoreLog(l *raft.Log) error {
	return s.health.appended(s.raftStore.StoreLog(l))
}

func (s checkedStore) StoreLogs(ls []*raft.Log) error {
	return s.health.appended(s.raftStore.StoreLogs(ls))
}

func (s checkedStore) DeleteRange(lo, hi uint64) error {
	return s.health.wrote(storeOpLog, s.raftStore.DeleteRange(lo, hi))
}

func (s checkedStore) Set(k, v []byte) error {
	return s.health.wrote(storeOpStable, s.raftStore.Set(k, v))
}

func (s checkedStore) SetUint64(k []byte, v uint64) error {
	return s.health.wrote(storeOpStable, s.raftStore.SetUint64(k, v))
}

// checkedSnapshots reports failed snapshot writes.
type checkedSnapshots struct {
	raft.SnapshotStore
	health *storageHealth
}

func (s checkedSnapshots) Create(version raft.SnapshotVersion, index, term uint64, conf raft.Configuration,
	confIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, conf, confIndex, trans)
	if err != nil {
		return nil, s.health.wrote(storeOpSnapshot, err)
	}
	return &checkedSink{SnapshotSink: sink, health: s.health}, nil
}

// checkedSink counts one failure per snapshot, however many writes fail.
type checkedSink struct {
	raft.SnapshotSink
	health *storageHealth
	failed bool
}

func (s *checkedSink) Write(p []byte) (int, error) {
	n, err := s.SnapshotSink.Write(p)
	return n, s.fail(err)
}

func (s *checkedSink) Close() error { return s.fail(s.SnapshotSink.Close()) }

func (s *checkedSink) fail(err error) error {
	if err == nil || s.failed {
		return err
	}
	s.failed = true
	return s.health.wrote(storeOpSnapshot, err)
}
