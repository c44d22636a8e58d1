package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
)

// ErrRefused is wrapped by every refusal of a membership change: the change
// would hurt the cluster, so nothing was done. The error says why.
var ErrRefused = errors.New("cluster: membership change refused")

// ErrUnknownMember is returned for a node neither Raft nor gossip knows.
var ErrUnknownMember = errors.New("cluster: no such member")

// quorum is what would be left of the voters without one of them.
type quorum struct{ remaining, reachable int }

// ok reports whether the voters left could still commit: a majority of them
// answers.
func (q quorum) ok() bool { return q.remaining > 0 && q.reachable >= q.remaining/2+1 }

func (n *Node) quorumWithout(servers []raft.Server, id raft.ServerID) quorum {
	var q quorum
	for _, s := range servers {
		if s.Suffrage != raft.Voter || s.ID == id {
			continue
		}
		q.remaining++
		if n.reachable(s.ID, s.Address) {
			q.reachable++
		}
	}
	return q
}

// refuseBelowQuorum is the refusal of a change that leaves q.
func refuseBelowQuorum(what string, q quorum) error {
	if q.remaining == 0 {
		return fmt.Errorf("%w: %s would leave no voter: the cluster would be gone", ErrRefused, what)
	}
	return fmt.Errorf("%w: %s would leave %d voter(s) of which %d answer, and committing needs %d; "+
		"bring the others back first, or use force if you are sure", ErrRefused, what, q.remaining, q.reachable, q.remaining/2+1)
}

// RemoveOptions qualify RemoveMember.
type RemoveOptions struct {
	// Force removes a voter even if the voters left would not have a
	// reachable quorum (never the last voter).
	Force bool
	// Leaving is set when the node itself asks to go (Node.Leave): it is
	// alive, and must not be added back while gossip still sees it.
	Leaving bool
}

// RemoveMember removes the node id from the Raft configuration. It runs on
// the leader only (ErrNotLeader elsewhere). It refuses, wrapping ErrRefused,
// to remove the leader itself, a node that is alive (it would be added back:
// the node should leave instead), or a voter without which the cluster would
// lose its quorum, unless forced. removed is false, with no error, when id is
// no longer in the configuration: a retried removal succeeds.
func (n *Node) RemoveMember(ctx context.Context, id string, opts RemoveOptions) (removed bool, err error) {
	if !n.IsLeader() {
		return false, ErrNotLeader
	}
	servers, err := n.servers()
	if err != nil {
		return false, err
	}
	var target *raft.Server
	for i := range servers {
		if servers[i].ID == raft.ServerID(id) {
			target = &servers[i]
		}
	}
	_, inGossip := n.gossipMember(id)
	switch {
	case target == nil && inGossip:
		return false, nil
	case target == nil:
		return false, fmt.Errorf("%w: %q", ErrUnknownMember, id)
	case id == n.cfg.NodeID:
		return false, fmt.Errorf("%w: %s is the leader: run `watchdog leave` on it, which hands leadership over first", ErrRefused, id)
	case !opts.Leaving && n.reachable(target.ID, target.Address):
		return false, fmt.Errorf("%w: %s is alive and would be added back: run `watchdog leave` on it, or stop it first", ErrRefused, id)
	case opts.Leaving && !n.confirmsLeaving(ctx, id):
		return false, fmt.Errorf("%w: %s does not say it is leaving: a node is retired by `watchdog leave` on it", ErrRefused, id)
	}
	if target.Suffrage == raft.Voter {
		if q := n.quorumWithout(servers, target.ID); !q.ok() && (!opts.Force || q.remaining == 0) {
			return false, refuseBelowQuorum("removing "+id, q)
		}
	}
	if opts.Leaving {
		n.ms.depart(id)
	}
	n.log.Info("remove server", "id", id, "force", opts.Force, "leaving", opts.Leaving)
	if err := waitFuture(ctx, n.raft.RemoveServer(target.ID, 0, n.timeout(ctx))); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return false, fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		return false, fmt.Errorf("cluster: remove %s: %w", id, err)
	}
	return true, nil
}

// confirmsLeaving asks the node id itself, at the HTTP address gossip
// advertises for it, whether it is leaving: a removal asked for as a leave
// (RemoveOptions.Leaving) goes ahead only if the node says so, so that no
// request, however authenticated, retires a node that is not on its way out.
func (n *Node) confirmsLeaving(ctx context.Context, id string) bool {
	m, ok := n.gossipMember(id)
	if !ok || !m.Alive {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st := n.fetchStatus(ctx, statusTarget{id: id, httpAddr: m.HTTPAddr})
	return st.ok && st.Leaving
}

// timeout is the time a Raft call may take: ApplyTimeout, or less if ctx
// ends sooner.
func (n *Node) timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(min(n.cfg.ApplyTimeout, time.Until(dl)), time.Millisecond)
	}
	return n.cfg.ApplyTimeout
}

// waitFuture waits for a Raft future or for ctx, whichever ends first.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Left is closed once this node has left the cluster (Node.Leave): its
// process should stop.
func (n *Node) Left() <-chan struct{} { return n.ms.left }

// LeaveOptions qualify Leave.
type LeaveOptions struct {
	// Force leaves even if the voters left would lack a reachable quorum.
	Force bool
	// Authorization is sent as the Authorization header of the removal
	// request to the leader: the credentials of whoever asked this node to
	// leave, checked by the leader as for any membership change.
	Authorization string
}

// Leave retires this node for good, as `watchdog leave` asks: if it is the
// leader it hands leadership over first; then the leader removes it from the
// Raft configuration; then it leaves gossip, so that no one waits for it or
// adds it back. Unless forced, it refuses (wrapping ErrRefused) when the
// voters left would lack a reachable quorum, and it always refuses to remove
// the last voter. Calling it again after it succeeded does nothing.
func (n *Node) Leave(ctx context.Context, opts LeaveOptions) error {
	n.ms.leaveMu.Lock()
	defer n.ms.leaveMu.Unlock()
	select {
	case <-n.ms.left:
		return nil
	default:
	}
	servers, err := n.servers()
	if err != nil {
		return err
	}
	self := raft.ServerID(n.cfg.NodeID)
	for _, s := range servers {
		if s.ID != self || s.Suffrage != raft.Voter {
			continue
		}
		if q := n.quorumWithout(servers, self); !q.ok() && (!opts.Force || q.remaining == 0) {
			return refuseBelowQuorum(n.cfg.NodeID+" leaving", q)
		}
	}
	// Said first, so that gossip has spread it by the time this node
	// leaves: memberlist drops a metadata update that arrives after the
	// departure it precedes, and the others would then record a death. The
	// broadcast goes out while leadership moves and the leader removes us.
	said := n.setLeaving(true)
	err = n.requestRemoval(ctx, opts)
	<-said
	if err != nil {
		<-n.setLeaving(false)
		return err
	}
	if err := n.gossip.Leave(2 * time.Second); err != nil {
		n.log.Warn("leave gossip", "err", err)
	}
	n.log.Info("left the cluster", "node", n.cfg.NodeID)
	close(n.ms.left)
	return nil
}

// setLeaving says whether this node is leaving, in its status answers at
// once and in its gossip metadata by a broadcast; the channel is closed once
// the broadcast has gone out (or failed: updateMeta waits at most a second).
func (n *Node) setLeaving(leaving bool) <-chan struct{} {
	n.ms.leaving.Store(leaving)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.updateMeta()
	}()
	return done
}

// requestRemoval asks the leader to remove this node, handing leadership
// over first if this node holds it, until the leader has answered.
func (n *Node) requestRemoval(ctx context.Context, opts LeaveOptions) error {
	for {
		var err error
		if n.IsLeader() {
			if err = n.Handover(ctx); err == nil && n.IsLeader() {
				return fmt.Errorf("%w: %s is the last voter: there is no one to hand leadership to", ErrRefused, n.cfg.NodeID)
			}
		} else {
			err = n.postLeave(ctx, opts)
			if err == nil || errors.Is(err, ErrRefused) {
				return err
			}
		}
		if err == nil {
			continue // handed over: now ask the new leader
		}
		n.log.Warn("leave: retrying", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: leave: %w (last: %w)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Handover moves leadership to another voter, the most caught up of those
// that answer, and returns once this node no longer leads. It does nothing
// on a follower, nor on a leader without another voter to take over.
// Raft's leadership transfer catches the target up and has it start an
// election at once, so the cluster has a new leader within a round trip or
// two instead of an election timeout.
func (n *Node) Handover(ctx context.Context) error {
	for n.IsLeader() {
		servers, err := n.servers()
		if err != nil {
			return err
		}
		target, others := n.handoverTarget(servers)
		if others == 0 {
			return nil
		}
		f := n.raft.LeadershipTransfer()
		if target != nil {
			f = n.raft.LeadershipTransferToServer(target.ID, target.Address)
		}
		start := time.Now()
		err = waitFuture(ctx, f)
		if ctx.Err() != nil {
			return fmt.Errorf("cluster: hand leadership over: %w", ctx.Err())
		}
		if err == nil {
			n.log.Info("handed leadership over", "to", targetID(target), "took", time.Since(start))
			continue
		}
		// A retry is routine (the transfer a shutdown started is still
		// under way, a target lagged): the caller says so if it fails.
		level := slog.LevelInfo
		if errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			level = slog.LevelDebug
		}
		n.log.Log(ctx, level, "hand leadership over, retrying", "to", targetID(target), "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: hand leadership over: %w (last: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// handoverTarget is the reachable voter with the highest applied index (nil
// if none answers: raft then picks), and how many other voters there are.
func (n *Node) handoverTarget(servers []raft.Server) (*raft.Server, int) {
	var best *raft.Server
	var bestApplied uint64
	others := 0
	for i, s := range servers {
		if s.Suffrage != raft.Voter || s.ID == raft.ServerID(n.cfg.NodeID) {
			continue
		}
		others++
		p, ok := n.peerStatus(string(s.ID))
		if !n.reachable(s.ID, s.Address) || !ok {
			continue
		}
		if best == nil || p.AppliedIndex > bestApplied {
			best, bestApplied = &servers[i], p.AppliedIndex
		}
	}
	return best, others
}

func targetID(s *raft.Server) string {
	if s == nil {
		return "any"
	}
	return string(s.ID)
}
