package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// Member is one node as this node sees it: from the Raft configuration
// (voter) and from gossip (alive, addresses).
type Member struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	RaftAddr string `json:"raft_addr"`
	Voter    bool   `json:"voter"`
	Alive    bool   `json:"alive"`
}

// Leader returns the current leader's id and HTTP address, empty when none
// is known.
func (n *Node) Leader() (id, httpAddr string) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	if string(lid) == n.cfg.NodeID {
		return n.cfg.NodeID, n.cfg.HTTPAddr
	}
	for _, m := range n.gossipMembers() {
		if m.ID == string(lid) {
			return m.ID, m.HTTPAddr
		}
	}
	return string(lid), ""
}

// Members lists every node in the Raft configuration or in gossip, by id.
func (n *Node) Members() []Member {
	byID := map[string]*Member{}
	for _, g := range n.gossipMembers() {
		byID[g.ID] = &Member{ID: g.ID, HTTPAddr: g.HTTPAddr, RaftAddr: g.RaftAddr, Alive: g.Alive}
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			m, ok := byID[string(s.ID)]
			if !ok {
				m = &Member{ID: string(s.ID), RaftAddr: string(s.Address)}
				byID[m.ID] = m
			}
			m.Voter = s.Suffrage == raft.Voter
		}
	}
	out := make([]Member, 0, len(byID))
	for _, m := range byID {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// maxReadyLag is how many committed entries a node may have left to apply
// and still call itself ready.
const maxReadyLag = 1000

// Ready reports why this node should not take traffic yet, or nil: it must
// know a leader, have heard from it recently, and have applied nearly
// everything committed.
func (n *Node) Ready() error {
	if id, _ := n.Leader(); id == "" {
		return ErrNoLeader
	}
	if !n.IsLeader() {
		if last := n.raft.LastContact(); time.Since(last) > 4*n.cfg.HeartbeatTimeout {
			return fmt.Errorf("%w: last contact with the leader %s ago", ErrNoLeader, time.Since(last).Round(time.Millisecond))
		}
	}
	commit, _ := strconv.ParseUint(n.raft.Stats()["commit_index"], 10, 64)
	if applied := n.raft.AppliedIndex(); commit > applied+maxReadyLag {
		return fmt.Errorf("cluster: catching up: applied %d of %d", applied, commit)
	}
	return nil
}

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
