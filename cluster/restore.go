package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hashicorp/raft"
)

// defaultRestoreTimeout bounds a restore whose context has no deadline:
// writing the snapshot, restoring it here, and a follower quorum installing it.
const defaultRestoreTimeout = 5 * time.Minute

// RestoreBackup replaces the replicated state with a backup's, on the
// leader (ErrNotLeader elsewhere, before r is read). r is spooled to a
// file in the data dir and checked whole (InspectBackup) before Raft sees
// it, because Raft panics on a snapshot its FSM cannot restore: a bad file,
// or one check refuses, is ErrBadBackup and changes nothing. Raft keeps the
// cluster's own configuration, writes the state as a new snapshot at the
// cluster's own next index and current term (never the backup's: see
// restoreMeta), and sends it to every follower; it returns once a quorum
// has it, or with ctx's error when ctx ends first (the restore may then
// still take effect). The leader's duties stop meanwhile and then start
// again, as after an election, so that every restored service gets a full
// timeout from the restore (see pauseDuties).
func (n *Node) RestoreBackup(ctx context.Context, r io.Reader, check RestoreCheck) (BackupInfo, error) {
	if !n.IsLeader() {
		return BackupInfo{}, ErrNotLeader
	}
	f, err := n.spool(r)
	if err != nil {
		return BackupInfo{}, err
	}
	info, offset, err := inspectBackup(io.NewSectionReader(f, 0, 1<<62), windowGate{next: check, node: n})
	if err != nil {
		discard(f)
		return info, err
	}
	n.restoreMu.Lock()
	release, err := n.pauseDuties(ctx)
	if err != nil {
		n.restoreMu.Unlock()
		discard(f)
		return info, err
	}
	timeout := defaultRestoreTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	// Raft reads the file until the restore is done, and waits for the
	// quorum after it without a bound of its own: the file, the lock and
	// the duties are given back when it returns, which may be after this
	// call has answered.
	done := make(chan error, 1)
	go func() {
		defer n.restoreMu.Unlock()
		defer discard(f)
		defer release()
		done <- n.raft.Restore(restoreMeta(info), io.NewSectionReader(f, offset, info.Size), timeout)
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		return info, fmt.Errorf("cluster: restore not confirmed by a quorum in time (it may still take effect): %w", ctx.Err())
	}
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return info, fmt.Errorf("%w: restore: %w", ErrNotLeader, err)
		}
		return info, fmt.Errorf("cluster: restore: %w", err)
	}
	n.log.Info("restored backup", "from_index", info.Index, "from_node", info.Node,
		"services", info.Services, "open_incidents", info.OpenIncidents, "applied_index", n.raft.AppliedIndex())
	return info, nil
}

// restoreMeta is what Raft is told of the backup: its size, and nothing
// else from the file. hashicorp/raft's Restore installs the snapshot at
// max(meta.Index, its last index)+1 and then appends to the log from there:
// an index taken from the file (any value, the checksum proves nothing
// about who wrote it) would move the whole cluster's log there, and near
// 2^64 the log wraps and nothing commits again, nor does a node restart.
// With Index 0 the snapshot lands at the cluster's own next index; Raft
// takes the current term itself.
func restoreMeta(info BackupInfo) *raft.SnapshotMeta {
	return &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: info.Size}
}

// spool copies r to a new file in the data dir, which the caller discards.
func (n *Node) spool(r io.Reader) (*os.File, error) {
	f, err := os.CreateTemp(n.cfg.DataDir, "restore-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("cluster: restore: spool file: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		discard(f)
		return nil, fmt.Errorf("cluster: restore: receive backup: %w", err)
	}
	return f, nil
}

// discard closes and removes a spool file.
func discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// pauseDuties stops the leader's duties until release is called; then they
// start over, if this node still leads, with since = then, as after an
// election. A restore replaces the state under the watcher: its last-seen
// times are as old as the backup, and no heartbeat since could have been
// committed into it, so, exactly as after a failover, no service may be
// declared down before a full timeout from the restore; and what the watcher
// remembers of the state it replaced (the actions it started) no longer
// applies. Stopping them before the state changes, not after, leaves no
// moment in which the old watcher looks at the new state.
func (n *Node) pauseDuties(ctx context.Context) (release func(), err error) {
	ack := make(chan struct{})
	select {
	case n.holdCh <- ack:
	case <-ctx.Done():
		return nil, fmt.Errorf("cluster: restore: stop the leader's duties: %w", ctx.Err())
	}
	// restoreMu keeps one release outstanding at most: this never blocks.
	release = func() { n.resumeCh <- struct{}{} }
	select {
	case <-ack:
		return release, nil
	case <-ctx.Done():
		release()
		return nil, fmt.Errorf("cluster: restore: stop the leader's duties: %w", ctx.Err())
	}
}
