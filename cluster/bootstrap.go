package cluster

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// bootstrapLoop bootstraps a new cluster once BootstrapExpect servers have
// found each other through gossip, as Consul does. Every node computes the
// same sorted server list, so they all bootstrap the same configuration and
// raft.ErrCantBootstrap from the ones that lose the race is harmless. No node
// bootstraps when any member already belongs to a cluster: newcomers are
// added by that cluster's leader instead.
func (n *Node) bootstrapLoop(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if id, _ := n.Leader(); id != "" {
			n.publishState()
			return
		}
		if !n.hasState.Load() && n.cfg.BootstrapExpect > 0 {
			n.tryBootstrap()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (n *Node) tryBootstrap() {
	if !n.secretAgreed() {
		return // one cluster secret first (secret_share.go)
	}
	var servers []raft.Server
	for _, m := range n.gossipMembers() {
		if m.HasState {
			return
		}
		if m.Alive {
			servers = append(servers, raft.Server{ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr), Suffrage: raft.Voter})
		}
	}
	if len(servers) < n.cfg.BootstrapExpect {
		return
	}
	slices.SortFunc(servers, func(a, b raft.Server) int { return cmp.Compare(a.ID, b.ID) })
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		n.log.Error("bootstrap cluster", "err", err)
		return
	}
	n.log.Info("bootstrapped cluster", "servers", len(servers))
	n.publishState()
}
