package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
)

// NodeStatus is one node's own account of its Raft state.
type NodeStatus struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	State    string `json:"state"` // Leader, Follower, Candidate or Shutdown
	// Suffrage is how the node's own latest configuration lists it:
	// voter, nonvoter, or none.
	Suffrage     string `json:"suffrage"`
	Leader       string `json:"leader"`
	Term         uint64 `json:"term"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// LastContactMS is how long ago the node last heard from the leader:
	// 0 on the leader itself, -1 if never.
	LastContactMS int64 `json:"last_contact_ms"`
	// Leaving is true while the node is leaving the cluster (Node.Leave).
	Leaving bool `json:"leaving,omitempty"`
	Proto   int  `json:"protocol"`
	// Config compares the node's config file with the committed
	// configuration (configstate.go).
	Config *ConfigStatus `json:"config,omitempty"`
	// Version is the build the node runs (buildinfo.Info.String); empty
	// from a node of a build before it was reported.
	Version string `json:"version,omitempty"`
}

// RaftStatus is this node's Raft state as Raft's own accessors tell it:
// what the status route, the metrics and the dashboard show.
type RaftStatus struct {
	State                                string // Leader, Follower, Candidate or Shutdown
	Term                                 uint64
	LastIndex, CommitIndex, AppliedIndex uint64
	// LastContact is how long ago the node last heard from the leader: 0
	// on the leader itself (its last contact is from before it led), -1
	// if never.
	LastContact time.Duration
}

// Leading reports whether the node was the leader when st was read.
func (st RaftStatus) Leading() bool { return st.State == raft.Leader.String() }

// RaftStatus reads this node's Raft state. Each of Raft's accessors is a
// cheap atomic or locked read; Stats, which formats every field as a
// string, is not needed.
func (n *Node) RaftStatus() RaftStatus {
	state := n.raft.State()
	st := RaftStatus{State: state.String(), Term: n.raft.CurrentTerm(), LastIndex: n.raft.LastIndex(),
		CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.raft.AppliedIndex(), LastContact: -1}
	switch last := n.raft.LastContact(); {
	case state == raft.Leader:
		st.LastContact = 0
	case !last.IsZero():
		st.LastContact = time.Since(last)
	}
	return st
}

// Status reports this node's Raft state, as the other nodes poll it.
func (n *Node) Status() NodeStatus {
	rs := n.RaftStatus()
	st := NodeStatus{
		ID: n.cfg.NodeID, RaftAddr: n.RaftAddr(), State: rs.State,
		Suffrage: n.ownSuffrage(), Term: rs.Term, LastIndex: rs.LastIndex,
		CommitIndex: rs.CommitIndex, AppliedIndex: rs.AppliedIndex,
		LastContactMS: -1, Leaving: n.ms.leaving.Load(), Proto: fsm.ProtocolVersion,
		Config: n.ConfigStatus(), Version: n.version,
	}
	_, lid := n.raft.LeaderWithID()
	st.Leader = string(lid)
	if rs.LastContact >= 0 {
		st.LastContactMS = rs.LastContact.Milliseconds()
	}
	return st
}

// ownSuffrage is how this node's latest configuration lists it.
func (n *Node) ownSuffrage() string {
	servers, err := n.servers()
	if err != nil {
		return "none"
	}
	for _, s := range servers {
		if s.ID == raft.ServerID(n.cfg.NodeID) {
			return suffrage(s.Suffrage)
		}
	}
	return "none"
}

func suffrage(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	}
	return "staging"
}

// servers returns the latest Raft configuration (committed or not).
func (n *Node) servers() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("cluster: read raft configuration: %w", err)
	}
	return f.Configuration().Servers, nil
}

// peerStatus is the last answer of one peer's status poll; if the last poll
// failed, ok is false, err says why, and NodeStatus is the answer before.
type peerStatus struct {
	NodeStatus
	ok  bool
	err string
	at  time.Time // when the answer came
	// ref is this node's last log index when the answer came, and
	// refLeader whether this node was the leader then: on the leader,
	// ref minus the peer's applied index is the peer's lag at that moment.
	ref       uint64
	refLeader bool
}

// statusLoop polls every other node's status each StatusInterval (at
// StatusPath, see peer_client.go).
//
// hashicorp/raft keeps each follower's match index to itself, so the leader
// cannot read how far a non-voter has caught up. Two ways around that: each
// node advertises its applied index in gossip metadata, or the nodes ask each
// other. Gossip is eventually consistent and every change of metadata is a
// broadcast; an answer to a direct request is as fresh as its round trip, and
// the leader can note its own last index at the moment the answer arrives,
// so the lag it computes does not grow with the polling period under load.
// The same answers give every node (not only the leader) what operators see
// in GET /v1/cluster, and give quorum checks a reachability test that does
// not wait seconds for gossip to declare a node dead.
func (n *Node) statusLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg.StatusInterval)
	defer tick.Stop()
	var cw configWatch
	for {
		n.noteConfig(&cw)
		n.pollStatuses(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// statusTarget is a node to poll: every server in the configuration and
// every alive gossip member, by id, at its advertised HTTP address.
type statusTarget struct{ id, httpAddr string }

func (n *Node) statusTargets() []statusTarget {
	addrs := map[string]string{}
	for _, m := range n.gossipMembers() {
		if m.Alive {
			addrs[m.ID] = m.HTTPAddr
		}
	}
	if servers, err := n.servers(); err == nil {
		for _, s := range servers {
			if _, ok := addrs[string(s.ID)]; !ok {
				m, _ := n.gossipMember(string(s.ID))
				addrs[string(s.ID)] = m.HTTPAddr // "" when gossip never knew it
			}
		}
	}
	delete(addrs, n.cfg.NodeID)
	out := make([]statusTarget, 0, len(addrs))
	for id, addr := range addrs {
		out = append(out, statusTarget{id, addr})
	}
	return out
}

// pollStatuses asks every target at once, each bounded by the interval, and
// replaces the table: a node no longer known drops out of it.
func (n *Node) pollStatuses(ctx context.Context) {
	targets := n.statusTargets()
	ctx, cancel := context.WithTimeout(ctx, n.cfg.StatusInterval)
	defer cancel()
	results := make([]peerStatus, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { results[i] = n.fetchStatus(ctx, t) })
	}
	wg.Wait()
	n.ms.mu.Lock()
	defer n.ms.mu.Unlock()
	table := make(map[string]peerStatus, len(results))
	for _, r := range results {
		if prev, ok := n.ms.peers[r.ID]; !r.ok && ok {
			// Keep the last answer (a node that said it was leaving, then
			// went), marked as failed now.
			r.NodeStatus = prev.NodeStatus
		}
		table[r.ID] = r
	}
	n.ms.peers = table
}

// peerStatus returns the last poll of id, if there is one.
func (n *Node) peerStatus(id string) (peerStatus, bool) {
	n.ms.mu.Lock()
	defer n.ms.mu.Unlock()
	p, ok := n.ms.peers[id]
	return p, ok
}

// saidLeaving reports whether id's last status answer said it was leaving.
func (n *Node) saidLeaving(id string) bool {
	p, ok := n.peerStatus(id)
	return ok && p.Leaving
}

// reachable reports whether the server id at addr answered its last status
// poll, recently. This node itself always is.
func (n *Node) reachable(id raft.ServerID, addr raft.ServerAddress) bool {
	if string(id) == n.cfg.NodeID {
		return true
	}
	p, ok := n.peerStatus(string(id))
	return ok && p.ok && raft.ServerAddress(p.RaftAddr) == addr && time.Since(p.at) < 3*n.cfg.StatusInterval
}
