package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/cluster"
)

// Backups is what the snapshot routes need from the node.
type Backups interface {
	// WriteBackup writes a fresh snapshot of the replicated state as a
	// backup file; cluster.ErrNotLeader, before writing, off the leader.
	WriteBackup(ctx context.Context, w io.Writer) (cluster.BackupInfo, error)
	// RestoreBackup replaces the replicated state with a backup's, on the
	// leader only; cluster.ErrBadBackup, changing nothing, for a bad file
	// or one check refuses.
	RestoreBackup(ctx context.Context, r io.Reader, check cluster.RestoreCheck) (cluster.BackupInfo, error)
}

// DefaultMaxSnapshotBody caps a backup sent for restore. The state is a few
// hundred bytes per service plus its history: a gigabyte is millions of
// services, far more than a watchdog cluster holds.
const DefaultMaxSnapshotBody = 1 << 30

// snapshotTimeout bounds a backup or a restore, streamed in full, and its
// hop to the leader.
const snapshotTimeout = 10 * time.Minute

// WithMaxSnapshotBody sets the largest backup PUT /v1/snapshot accepts
// (DefaultMaxSnapshotBody when not set or not positive).
func WithMaxSnapshotBody(n int64) Option {
	return func(s *Server) { s.maxSnapshotBody = n }
}

// snapshotRoutes adds the backup routes, both guarded by the API token (a
// backup holds the whole state) and both run on the leader: a follower
// streams them there and back, one hop, as leaderWrite does for writes.
//
//	GET /v1/snapshot  a backup of the leader's state, as a file
//	PUT /v1/snapshot  restore the backup in the body
func (s *Server) snapshotRoutes(r *mux.Router) {
	r.HandleFunc("/v1/snapshot", s.handleSnapshotSave).Methods(http.MethodGet)
	r.HandleFunc("/v1/snapshot", s.handleSnapshotRestore).Methods(http.MethodPut)
}

func (s *Server) handleSnapshotSave(w http.ResponseWriter, r *http.Request) {
	if !allowed(w, r, s.access.apiToken, false) {
		return
	}
	s.extendWriteDeadline(w, snapshotTimeout) // a backup of millions of services streams for a while
	if !s.node.IsLeader() {
		s.node.ProxyToLeader(w, r, snapshotTimeout)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), snapshotTimeout)
	defer cancel()
	out := &backupWriter{w: w}
	info, err := s.node.WriteBackup(ctx, out)
	switch {
	case err == nil:
		s.log.Info("backup sent", "index", info.Index, "bytes", info.Size, "to", r.RemoteAddr)
	case out.started:
		// Too late for an error status: cut the stream short. A truncated
		// backup lacks its checksum, so nothing will restore it.
		s.log.Warn("backup failed while streaming", "err", err)
		panic(http.ErrAbortHandler)
	case errors.Is(err, cluster.ErrNotLeader):
		s.node.ProxyToLeader(w, r, snapshotTimeout)
	default:
		writeFailed(w, err)
	}
}

// backupWriter sends the file's headers with its first bytes, so that a
// failure before then can still be answered with a JSON error.
type backupWriter struct {
	w       http.ResponseWriter
	started bool
}

func (b *backupWriter) Write(p []byte) (int, error) {
	if !b.started {
		b.started = true
		h := b.w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", `attachment; filename="watchdog.snap"`)
		b.w.WriteHeader(http.StatusOK)
	}
	return b.w.Write(p)
}

func (s *Server) handleSnapshotRestore(w http.ResponseWriter, r *http.Request) {
	if !allowed(w, r, s.access.apiToken, false) {
		return
	}
	limit := s.maxSnapshotBody
	if limit <= 0 {
		limit = DefaultMaxSnapshotBody
	}
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", limit))
		return
	}
	s.extendReadDeadline(w, snapshotTimeout)
	s.extendWriteDeadline(w, snapshotTimeout)
	if !s.node.IsLeader() {
		s.node.ProxyToLeader(w, r, snapshotTimeout)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), snapshotTimeout)
	defer cancel()
	info, err := s.node.RestoreBackup(ctx, http.MaxBytesReader(w, r.Body, limit), s.restoreRules())
	if err != nil {
		restoreFailed(w, err)
		return
	}
	s.log.Info("backup restored", "from_index", info.Index, "services", info.Services)
	writeJSON(w, http.StatusOK, map[string]any{"restored": true, "backup": info})
}

// restoreFailed maps a failed restore to its answer. The body has been
// read, so a restore is never forwarded after it started here.
func restoreFailed(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig), errors.Is(err, os.ErrDeadlineExceeded):
		bodyError(w, err) // the body, spooled, was too large or did not arrive in time
	case errors.Is(err, cluster.ErrNotLeader):
		writeFailed(w, fmt.Errorf("%w: leadership moved during the restore: retry", cluster.ErrNotLeader))
	default:
		writeFailed(w, err)
	}
}
