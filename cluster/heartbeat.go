package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
)

// leaderChangeWait is how long a heartbeat waits for a leadership change to
// end before its client is told to try again: a handover takes tens of
// milliseconds, which a client would otherwise see as a burst of 503s.
const leaderChangeWait = time.Second

// Heartbeat records that the services were heard from now. It returns once
// the heartbeats are committed on a quorum. On a follower they travel to the
// leader, batched with the other heartbeats this node received meanwhile.
// The leader stamps the time (Now), so one clock orders all heartbeats. While
// leadership is changing it retries for up to leaderChangeWait, which is
// safe because heartbeats are idempotent.
func (n *Node) Heartbeat(ctx context.Context, ids ...string) error {
	deadline := time.Now().Add(leaderChangeWait)
	for {
		err := n.heartbeatOnce(ctx, ids)
		if err == nil || !leaderChanging(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return single(err, ids)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// HeartbeatID is Heartbeat of one id, for callers through an interface:
// the slice of a variadic call through one always escapes, an allocation
// per request; here it stays on the stack (submit copies the ids).
func (n *Node) HeartbeatID(ctx context.Context, id string) error {
	return n.Heartbeat(ctx, id)
}

// leaderChanging reports whether err means only that the leader is changing.
// A leader that cannot write its log steps down (Raft does), so a storage
// error on the leader means a new leader is coming too.
func leaderChanging(err error) bool {
	return errors.Is(err, ErrNoLeader) || errors.Is(err, ErrStorage) || errors.Is(err, ErrNotLeader) ||
		errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress)
}

func (n *Node) heartbeatOnce(ctx context.Context, ids []string) error {
	if n.IsLeader() {
		err := n.commits.submit(ctx, ids)
		if !errors.Is(err, ErrNotLeader) {
			return err
		}
	}
	return n.forwards.submit(ctx, ids)
}

// CommitHeartbeats is Heartbeat for ids forwarded by another node: it commits
// them here, or fails with ErrNotLeader rather than forwarding again.
func (n *Node) CommitHeartbeats(ctx context.Context, ids []string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	return n.commits.submit(ctx, ids)
}

// SettleHeartbeats returns once every heartbeat this node took to commit
// before the call (its own clients' and those forwarded to it) has been
// committed or has failed. The leader's watcher settles before it declares
// services down: a heartbeat that arrived in time but waited behind a slow
// commit must reach the log before the incident does, which it then voids
// (an incident opens only if the service's last heartbeat is unchanged).
func (n *Node) SettleHeartbeats(ctx context.Context) error {
	return n.commits.barrier(ctx)
}

// commitLocal commits, on the leader, the ids admission lets in; the others
// come back in a *RefusedError, each to its own request.
func (n *Node) commitLocal(ctx context.Context, ids []string) error {
	ok, refused, release := n.admission.admit(ids, false)
	defer release()
	if len(ok) > 0 {
		if _, err := n.Apply(ctx, fsm.Heartbeat{At: n.Now().UnixNano(), IDs: ok}); err != nil {
			return err
		}
	}
	if len(refused) > 0 {
		return &RefusedError{IDs: refused}
	}
	return nil
}
