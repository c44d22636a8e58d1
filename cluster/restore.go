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
// or one with a service check refuses, is ErrBadBackup and changes nothing. Raft keeps the cluster's own
// configuration, writes the state as a new snapshot at an index past
// both the log and the backup, and sends it to every follower; it returns
// once a quorum has it. The leader's duties stop meanwhile and then start
// again, as after an election, so that every restored service gets a full
// timeout from the restore (see pauseDuties).
func (n *Node) RestoreBackup(ctx context.Context, r io.Reader, check ServiceCheck) (BackupInfo, error) {
	if !n.IsLeader() {
		return BackupInfo{}, ErrNotLeader
	}
	f, err := os.CreateTemp(n.cfg.DataDir, "restore-*.tmp")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("cluster: restore: spool file: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	if _, err := io.Copy(f, r); err != nil {
		return BackupInfo{}, fmt.Errorf("cluster: restore: receive backup: %w", err)
	}
	info, offset, err := inspectBackup(io.NewSectionReader(f, 0, 1<<62), check)
	if err != nil {
		return info, err
	}
	n.restoreMu.Lock()
	defer n.restoreMu.Unlock()
	release, err := n.pauseDuties(ctx)
	if err != nil {
		return info, err
	}
	defer release()
	timeout := defaultRestoreTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: info.Index, Term: info.Term, Size: info.Size}
	if err := n.raft.Restore(meta, io.NewSectionReader(f, offset, info.Size), timeout); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return info, fmt.Errorf("%w: restore: %w", ErrNotLeader, err)
		}
		return info, fmt.Errorf("cluster: restore: %w", err)
	}
	n.log.Info("restored backup", "from_index", info.Index, "from_node", info.Node,
		"services", info.Services, "open_incidents", info.OpenIncidents, "applied_index", n.raft.AppliedIndex())
	return info, nil
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
