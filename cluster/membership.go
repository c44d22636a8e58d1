package cluster

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Member is one node as this node sees it: from the Raft configuration
// (suffrage), from gossip (alive, gossip state, protocol) and from the
// node's own answer to the last status poll (Raft state, applied index, last
// contact). Fields from a poll are as of that poll, at most a StatusInterval
// old; they are empty, and StatusError says why, when the node did not answer.
type Member struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	RaftAddr string `json:"raft_addr"`
	// Voter is Suffrage == "voter", kept for the scripts that count voters.
	Voter bool `json:"voter"`
	// Suffrage is voter or nonvoter, or none for a node gossip knows but the
	// Raft configuration does not (not yet added, or removed).
	Suffrage string `json:"suffrage"`
	Alive    bool   `json:"alive"`
	// Gossip is alive, dead or left, or unknown for a server gossip has
	// not told this node of.
	Gossip    string `json:"gossip"`
	RaftState string `json:"raft_state,omitempty"`
	// AppliedIndex is the last entry the node has applied, and Lag how far
	// that is behind the leader's commit index (null when unknown).
	AppliedIndex uint64 `json:"applied_index"`
	Lag          *int64 `json:"lag"`
	// LastContactMS is how long ago the node last heard from the leader
	// (0 on the leader, null when unknown).
	LastContactMS *int64 `json:"last_contact_ms"`
	Protocol      int    `json:"protocol,omitempty"`
	// Version is the build the node runs, as its status answer says.
	Version     string `json:"version,omitempty"`
	StatusError string `json:"status_error,omitempty"`
	// Config is how the node's config file compares with the committed
	// configuration, as it answered (null when unknown).
	Config *ConfigStatus `json:"config,omitempty"`
}

// membershipState is what membership management keeps besides the gossip
// member table: the other nodes' last status answers, the nodes that left
// and must not be added back while still alive, and the outcome of Leave.
type membershipState struct {
	// leaving: see Meta.Leaving.
	leaving atomic.Bool

	mu       sync.Mutex
	peers    map[string]peerStatus // by id, the last status poll
	departed map[string]time.Time  // by id, when a leave removed it

	leaveMu sync.Mutex
	left    chan struct{} // closed once this node has left the cluster
}

func newMembershipState() *membershipState {
	return &membershipState{peers: map[string]peerStatus{}, departed: map[string]time.Time{}, left: make(chan struct{})}
}

// departureMemory bounds how long the leader keeps a node that left out of
// the cluster while gossip still sees it alive: the node leaves gossip
// right after its removal, so this is only a safety net.
const departureMemory = time.Minute

func (s *membershipState) depart(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.departed[id] = time.Now()
}

func (s *membershipState) forgetDeparture(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.departed, id)
}

// departing reports whether id left recently, so that its lingering gossip
// presence must not bring it back.
func (s *membershipState) departing(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.departed[id]
	if ok && time.Since(at) > departureMemory {
		delete(s.departed, id)
		return false
	}
	return ok
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
	if m, ok := n.gossipMember(string(lid)); ok {
		return m.ID, m.HTTPAddr
	}
	return string(lid), ""
}

// Members lists every node in the Raft configuration or in gossip, by id.
func (n *Node) Members() []Member {
	byID := map[string]*Member{}
	for _, g := range n.gossipMembers() {
		byID[g.ID] = &Member{ID: g.ID, HTTPAddr: g.HTTPAddr, RaftAddr: g.RaftAddr, Alive: g.Alive,
			Gossip: gossipState(g.State), Protocol: g.Proto, Suffrage: "none"}
	}
	if servers, err := n.servers(); err == nil {
		for _, s := range servers {
			m, ok := byID[string(s.ID)]
			if !ok {
				m = &Member{ID: string(s.ID), RaftAddr: string(s.Address), Gossip: "unknown"}
				byID[m.ID] = m
			}
			m.Suffrage = suffrage(s.Suffrage)
			m.Voter = s.Suffrage == raft.Voter
		}
	}
	ref, self := n.leaderCommit(), n.Status()
	for _, m := range byID {
		n.addStatus(m, ref, self)
	}
	out := make([]Member, 0, len(byID))
	for _, m := range byID {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// addStatus fills in what m's own status says, measuring its lag against
// ref, the leader's commit index (0 when unknown). self is this node's.
func (n *Node) addStatus(m *Member, ref uint64, self NodeStatus) {
	st := self
	if m.ID != n.cfg.NodeID {
		p, ok := n.peerStatus(m.ID)
		switch {
		case !ok:
			m.StatusError = "not polled yet"
			return
		case !p.ok:
			m.StatusError = p.err
			return
		case p.refLeader:
			ref = p.ref // the leader's own index when the answer came
		}
		st = p.NodeStatus
	}
	m.RaftState, m.AppliedIndex, m.Config, m.Version = st.State, st.AppliedIndex, st.Config, st.Version
	if st.LastContactMS >= 0 {
		m.LastContactMS = &st.LastContactMS
	}
	if ref > 0 {
		lag := max(int64(ref)-int64(st.AppliedIndex), 0)
		m.Lag = &lag
	}
}

// leaderCommit is the leader's commit index: this node's own if it leads,
// else as the leader answered the last status poll, or 0 if it did not.
func (n *Node) leaderCommit() uint64 {
	if n.IsLeader() {
		return n.raft.CommitIndex()
	}
	_, lid := n.raft.LeaderWithID()
	if p, ok := n.peerStatus(string(lid)); ok && p.ok && time.Since(p.at) < 3*n.cfg.StatusInterval {
		return p.CommitIndex
	}
	return 0
}

// Ready reports why this node should not take traffic yet, or nil: its
// writes to the data dir must succeed (storage.go), it must know a leader, have heard from it recently, and have applied nearly
// everything committed, by its own commit index and by the leader's (a node
// cut off from the leader's entries does not learn of new commits, so its
// own commit index alone would not show it falling behind).
func (n *Node) Ready() error {
	if err := n.storage.err(); err != nil {
		return err
	}
	if id, _ := n.Leader(); id == "" {
		return ErrNoLeader
	}
	if st := n.ConfigStatus(); st != nil && len(st.Missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingActions, strings.Join(st.Missing, ", "))
	}
	var contact time.Duration
	if !n.IsLeader() {
		contact = time.Since(n.raft.LastContact())
	}
	return readiness(contact, 4*n.cfg.HeartbeatTimeout, n.raft.AppliedIndex(),
		max(n.raft.CommitIndex(), n.leaderCommit()), n.cfg.MaxReadyLag)
}

// readiness is the decision of Ready on its inputs.
func readiness(contact, maxContact time.Duration, applied, commit, maxLag uint64) error {
	if contact > maxContact {
		return fmt.Errorf("%w: last contact with the leader %s ago", ErrNoLeader, contact.Round(time.Millisecond))
	}
	if commit > applied+maxLag {
		return fmt.Errorf("cluster: catching up: applied %d of %d, more than %d behind", applied, commit, maxLag)
	}
	return nil
}
