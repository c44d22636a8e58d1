package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
	"go.etcd.io/bbolt"
)

// walMetaFile is the WAL's meta store: its segment list, term and vote.
const walMetaFile = "wal-meta.db"

// loadWALMeta reads the WAL's segment list before the WAL opens it,
// reporting a meta store it cannot read as damage. It returns false for a
// new WAL.
func loadWALMeta(dir string) (state types.PersistentState, found bool, err error) {
	path := filepath.Join(dir, walMetaFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return state, false, nil
	}
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	// Bolt maps the file: a truncated one faults rather than fails.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &damagedError{file: path, problem: fmt.Sprintf("unreadable: %v", r)}
		}
	}()
	state, err = meta.Load(dir)
	if err != nil {
		return state, true, &damagedError{file: path, problem: err.Error()}
	}
	return state, true, nil
}

// checkSegmentFiles finds the damage raft-wal would take for a torn write
// and recover from by dropping entries: every segment file is created at
// its full size (sparse or preallocated), so one shorter than that was
// truncated, unless it is the tail and holds no entry yet (the process
// died, or the disk was full, as it created it): that one is given its
// size, as its creation would have, so that it is not taken for truncated
// once it holds entries. A missing file is damage too, except the tail's,
// which wal.Open creates.
func checkSegmentFiles(dir string, state types.PersistentState) error {
	for i, si := range state.Segments {
		path := filepath.Join(dir, segment.FileName(si))
		info, err := os.Stat(path)
		tail := i == len(state.Segments)-1
		switch {
		case errors.Is(err, os.ErrNotExist) && tail:
			continue
		case err != nil:
			return &damagedError{file: path, problem: err.Error()}
		case info.Size() >= int64(si.SizeLimit):
			continue
		}
		if tail {
			if _, _, last, err := segmentSealed(dir, si); err == nil && last < si.BaseIndex {
				if err := os.Truncate(path, int64(si.SizeLimit)); err != nil {
					return fmt.Errorf("cluster: %s: %w", path, err)
				}
				continue
			}
		}
		return &damagedError{file: path, problem: fmt.Sprintf("truncated: %d bytes, its segment is %d", info.Size(), si.SizeLimit)}
	}
	return nil
}

// walOpenDamaged says whether an error of wal.Open means a damaged file
// rather than, say, a full disk.
func walOpenDamaged(err error) bool {
	return errors.Is(err, types.ErrCorrupt) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, bbolt.ErrInvalid) || errors.Is(err, bbolt.ErrChecksum) || errors.Is(err, bbolt.ErrVersionMismatch)
}

// readWholeLog reads and decodes every entry of the log, as Raft may:
// an entry it cannot read is a damaged store, reported before Raft starts
// rather than as the panic Raft stops on when it applies it.
func readWholeLog(store raft.LogStore, file string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &damagedError{file: file, problem: fmt.Sprintf("log unreadable: %v", r)}
		}
	}()
	first, err := store.FirstIndex()
	if err != nil {
		return &damagedError{file: file, problem: err.Error()}
	}
	last, err := store.LastIndex()
	if err != nil {
		return &damagedError{file: file, problem: err.Error()}
	}
	var l raft.Log
	for i := first; i <= last && last > 0; i++ {
		if err := store.GetLog(i, &l); err != nil {
			return &damagedError{file: file, problem: fmt.Sprintf("entry %d of %d-%d: %v", i, first, last, err)}
		}
	}
	return nil
}
