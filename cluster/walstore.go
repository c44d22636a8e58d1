package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// walSegments is how the WAL lays out its segment files.
type walSegments struct {
	// size is a segment file's size. raft-wal's default is 64 MiB.
	size int
	// preallocate reserves a new segment's blocks when it is created
	// (fallocate), as raft-wal does by default. Without it the file is
	// sparse: blocks are taken as entries are written, so a full disk
	// fails the first append that needs a block, as BoltDB's does, instead
	// of showing only when a segment is full and the next one cannot be
	// created.
	preallocate bool
}

// walSegmentSize, with sparse segments (walSegments.preallocate false), is
// what a node uses. Sparse, so that a full disk
// is noticed at the first append it refuses, and space is taken only as
// the log grows; 4 MiB, so that a compacted log frees its space soon (a
// sealed segment is deleted once all its entries are below the first
// index) while a rotation stays rare: heartbeat entries are a few hundred
// bytes, so a segment holds thousands. Neither costs measurable CPU per
// entry (BenchmarkWALSegments; docs/performance.md).
const walSegmentSize = 4 << 20

// walStore is raft-wal behind a lock of its directory, with the repairs
// this node needs of raft-wal v0.4.2:
//   - an interrupted rotation is completed (completeRotation), at open and
//     when an append finds the tail segment sealed;
//   - entries below the first index are refused (GetLog);
//   - its meta store is ours to close (it once was not closed by Close,
//     which left its file lock behind).
//
// mu is held for reading by every call and for writing while the WAL is
// reopened, so no call sees it half closed.
type walStore struct {
	dir    string
	seg    walSegments
	log    hclog.Logger
	unlock func()

	mu   sync.RWMutex
	w    *wal.WAL
	meta *metadb.BoltMetaDB
	err  error // why the WAL is not open, after a failed reopen
}

// openWAL opens (or creates) the WAL in dir, which the caller has locked.
func openWAL(dir string, seg walSegments, log hclog.Logger, unlock func()) (*walStore, error) {
	s := &walStore{dir: dir, seg: seg, log: log, unlock: unlock}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *walStore) open() error {
	state, found, err := loadWALMeta(s.dir)
	if err != nil {
		return err
	}
	if found {
		if err := checkSegmentFiles(s.dir, state); err != nil {
			return err
		}
		switch done, err := completeRotation(s.dir, s.seg, state); {
		case walOpenDamaged(err):
			return &damagedError{file: s.dir + string(filepath.Separator), problem: err.Error()}
		case err != nil:
			// Opened as it is, the WAL serves reads and refuses appends
			// until an append reopens it and the rotation completes.
			s.log.Warn("cannot complete the WAL's segment rotation yet: appends fail until it is", "err", err)
		default:
			// The new tail, if the rotation left its file short.
			if err := checkSegmentFiles(s.dir, done); err != nil {
				return err
			}
		}
	}
	vfs := types.VFS(walfs.New())
	if !s.seg.preallocate {
		vfs = sparseVFS{walfs.New()}
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(s.dir, wal.WithMetaStore(meta), wal.WithLogger(s.log), wal.WithSegmentSize(s.seg.size),
		wal.WithSegmentFiler(segment.NewFiler(s.dir, vfs)))
	if err != nil {
		meta.Close()
		if walOpenDamaged(err) {
			return &damagedError{file: s.dir + string(filepath.Separator), problem: err.Error()}
		}
		return fmt.Errorf("cluster: open %s: %w", s.dir, err)
	}
	s.w, s.meta, s.err = w, meta, nil
	return nil
}

func (s *walStore) close() error {
	err := errors.Join(s.w.Close(), s.meta.Close())
	s.w, s.meta = nil, nil
	return err
}

// reopen replaces a WAL whose tail segment is sealed but was never
// followed by a new one: raft-wal rotates in the background after the
// append that filled a segment and only logs a failure (a full disk), and
// every append after it fails with ErrSealed until the WAL is opened
// again, when completeRotation finishes the rotation. A rotation that
// cannot be completed yet (its meta commit fails on the full disk) leaves
// the WAL opened as it was: reads go on, appends fail until the next try.
// Should wal.Open itself fail, every call answers ErrStorage until an
// append opens it again.
func (s *walStore) reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return s.openAgain()
	}
	before, _ := s.w.LastIndex()
	if err := s.close(); err != nil {
		s.log.Warn("close the WAL to complete its rotation", "err", err)
	}
	if err := s.openAgain(); err != nil {
		return err
	}
	last, _ := s.w.LastIndex()
	s.log.Info("WAL reopened to complete a segment rotation", "last_index_before", before, "last_index", last)
	return nil
}

func (s *walStore) openAgain() error {
	if err := s.open(); err != nil {
		s.err = err
		return err
	}
	return nil
}

// wal is the open WAL, or why there is none; mu is held for reading.
func (s *walStore) wal() (*wal.WAL, error) {
	if s.w == nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, s.err)
	}
	return s.w, nil
}

// StoreLogs retries an append refused because the tail is sealed once, on
// the WAL reopened: the entries were not written.
func (s *walStore) StoreLogs(logs []*raft.Log) error {
	err := s.storeLogs(logs)
	if !errors.Is(err, wal.ErrSealed) && !errors.Is(err, ErrStorage) {
		return err
	}
	if rerr := s.reopen(); rerr != nil {
		return errors.Join(err, rerr)
	}
	return s.storeLogs(logs)
}

func (s *walStore) storeLogs(logs []*raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	w, err := s.wal()
	if err != nil {
		return err
	}
	return w.StoreLogs(logs)
}

func (s *walStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// GetLog refuses entries below the first index, as BoltDB does. raft-wal
// truncates the head of its open segment only logically and still serves
// the entries below from it: a leader would then send a follower that is
// far behind the whole log instead of a snapshot, and TrailingLogs would
// bound nothing until the segment is sealed. An entry truncated between
// the two reads is served, which is harmless: it was in the log a moment
// ago and entries never change.
func (s *walStore) GetLog(index uint64, log *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	w, err := s.wal()
	if err != nil {
		return err
	}
	first, err := w.FirstIndex()
	if err != nil {
		return err
	}
	if index < first {
		return raft.ErrLogNotFound
	}
	return w.GetLog(index, log)
}

func (s *walStore) FirstIndex() (uint64, error) {
	return walCall(s, func(w *wal.WAL) (uint64, error) { return w.FirstIndex() })
}

func (s *walStore) LastIndex() (uint64, error) {
	return walCall(s, func(w *wal.WAL) (uint64, error) { return w.LastIndex() })
}

func (s *walStore) DeleteRange(lo, hi uint64) error {
	_, err := walCall(s, func(w *wal.WAL) (struct{}, error) { return struct{}{}, w.DeleteRange(lo, hi) })
	return err
}

func (s *walStore) Set(k, v []byte) error {
	_, err := walCall(s, func(w *wal.WAL) (struct{}, error) { return struct{}{}, w.Set(k, v) })
	return err
}

func (s *walStore) Get(k []byte) ([]byte, error) {
	return walCall(s, func(w *wal.WAL) ([]byte, error) { return w.Get(k) })
}

func (s *walStore) SetUint64(k []byte, v uint64) error {
	_, err := walCall(s, func(w *wal.WAL) (struct{}, error) { return struct{}{}, w.SetUint64(k, v) })
	return err
}

func (s *walStore) GetUint64(k []byte) (uint64, error) {
	return walCall(s, func(w *wal.WAL) (uint64, error) { return w.GetUint64(k) })
}

// IsMonotonic: the WAL takes no gap in its log (raft.MonotonicLogStore).
func (s *walStore) IsMonotonic() bool { return true }

func (s *walStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.unlock()
	if s.w == nil {
		return nil
	}
	return s.close()
}

// walCall runs f on the open WAL with mu held for reading.
func walCall[T any](s *walStore, f func(*wal.WAL) (T, error)) (T, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	w, err := s.wal()
	if err != nil {
		var zero T
		return zero, err
	}
	return f(w)
}

// sparseVFS creates segment files sparse: sized, but without blocks.
type sparseVFS struct{ *walfs.FS }

func (v sparseVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	f, err := v.FS.Create(dir, name, 0)
	if err != nil {
		return nil, err
	}
	if t, ok := f.(interface{ Truncate(int64) error }); ok {
		if err := t.Truncate(int64(size)); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// completeRotation finishes a segment rotation raft-wal began and did not
// end: the tail segment's file is sealed (its index written, the append
// that filled it acknowledged) but the meta store still lists it as the
// open tail. raft-wal then refuses every append with ErrSealed, after a
// restart too: it opens the sealed file as its tail and never rotates it.
// This happens when the rotation, which raft-wal runs in the background
// after the append, fails (a full disk) or the process dies before it
// commits (kill -9). The state committed here is the one the rotation
// would have committed: the tail marked sealed, a new empty tail after it;
// wal.Open then creates the new tail's file. It returns the segment list
// as it now is.
func completeRotation(dir string, seg walSegments, state types.PersistentState) (types.PersistentState, error) {
	if len(state.Segments) == 0 {
		return state, nil
	}
	tail := state.Segments[len(state.Segments)-1]
	if !tail.SealTime.IsZero() {
		return state, nil
	}
	sealed, indexStart, last, err := segmentSealed(dir, tail)
	if err != nil || !sealed {
		return state, err
	}
	tail.SealTime, tail.MaxIndex, tail.IndexStart = time.Now(), last, indexStart
	state.Segments[len(state.Segments)-1] = tail
	state.Segments = append(state.Segments, types.SegmentInfo{
		ID: state.NextSegmentID, BaseIndex: last + 1, MinIndex: last + 1, SizeLimit: uint32(seg.size),
		Codec: wal.CodecBinaryV1, CreateTime: time.Now(),
	})
	state.NextSegmentID++
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	if _, err := meta.Load(dir); err != nil {
		return state, err
	}
	return state, meta.CommitState(state)
}

// segmentSealed reads the tail segment's file as raft-wal recovers it and
// says whether it is sealed, where its index starts and its last index.
func segmentSealed(dir string, info types.SegmentInfo) (sealed bool, indexStart, last uint64, err error) {
	w, err := segment.NewFiler(dir, walfs.New()).RecoverTail(info)
	if errors.Is(err, os.ErrNotExist) {
		return false, 0, 0, nil // wal.Open creates it
	}
	if err != nil {
		return false, 0, 0, err
	}
	defer w.Close()
	sealed, indexStart, err = w.Sealed()
	return sealed, indexStart, w.LastIndex(), err
}
