package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// monitorLeadership starts the leader loop when this node gains leadership
// and stops it, waiting for it to finish, when leadership is lost. Raft
// blocks on NotifyCh, so this loop does nothing slow itself and the channel
// is buffered.
func (n *Node) monitorLeadership(ctx context.Context) {
	var (
		cancel context.CancelFunc
		wg     sync.WaitGroup
	)
	halt := func() {
		if cancel != nil {
			cancel()
			wg.Wait()
			cancel = nil
		}
	}
	defer halt()
	for {
		select {
		case isLeader := <-n.notifyCh:
			// A repeated true (lost and regained in between) restarts the
			// loop too, so duties never run on a stale view.
			halt()
			if isLeader {
				lctx, stop := context.WithCancel(ctx)
				cancel = stop
				wg.Add(1)
				go func() {
					defer wg.Done()
					n.leaderLoop(lctx)
				}()
			}
		case <-ctx.Done():
			return
		}
	}
}

// leaderLoop waits until the FSM has applied everything earlier leaders
// committed (a Barrier), then runs the leader's duties until ctx ends.
func (n *Node) leaderLoop(ctx context.Context) {
	since := time.Now()
	for {
		err := n.raft.Barrier(n.cfg.ApplyTimeout).Error()
		if err == nil {
			break
		}
		n.log.Warn("barrier failed, retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	n.log.Info("leadership established", "node", n.cfg.NodeID)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if n.duty != nil {
			n.duty(ctx, since)
		}
	}()
	n.reconcileLoop(ctx)
	wg.Wait()
	n.log.Info("leadership lost", "node", n.cfg.NodeID)
}

// reconcileLoop brings the Raft configuration in line with gossip on every
// membership event and periodically, in case an event was dropped.
func (n *Node) reconcileLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		n.reconcile()
		select {
		case <-ctx.Done():
			return
		case <-n.events:
		case <-tick.C:
		}
	}
}

// reconcile adds every alive gossip member that is missing from the Raft
// configuration as a voter. A member known under its id at another address
// (or another id at its address: a replaced node) is removed first, so a
// stale entry can never block elections. Nothing else is removed here: a node
// that is merely down or restarting keeps its place.
func (n *Node) reconcile() {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		n.log.Warn("read raft configuration", "err", err)
		return
	}
	servers := f.Configuration().Servers
	for _, m := range n.gossipMembers() {
		if !m.Alive {
			continue
		}
		id, addr := raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr)
		present := false
		for _, s := range servers {
			switch {
			case s.ID == id && s.Address == addr:
				present = true
			case (s.ID == id || s.Address == addr) && s.ID != raft.ServerID(n.cfg.NodeID):
				n.log.Info("remove stale raft server", "id", s.ID, "addr", s.Address)
				if err := n.raft.RemoveServer(s.ID, 0, n.cfg.ApplyTimeout).Error(); err != nil {
					n.log.Warn("remove stale raft server", "id", s.ID, "err", err)
					return
				}
			}
		}
		if present {
			continue
		}
		n.log.Info("add voter", "id", id, "addr", addr)
		if err := n.raft.AddVoter(id, addr, 0, n.cfg.ApplyTimeout).Error(); err != nil {
			n.log.Warn("add voter", "id", id, "err", err)
		}
	}
}
