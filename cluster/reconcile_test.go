package cluster

import (
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
)

// leadAlone bootstraps n as the only voter of its cluster and waits until
// it leads.
func leadAlone(t *testing.T, n *Node) {
	t.Helper()
	self := raft.Server{ID: raft.ServerID(n.cfg.NodeID), Address: raft.ServerAddress(n.RaftAddr())}
	if err := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{self}}).Error(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leadership")
		}
		time.Sleep(10 * time.Millisecond) // polling Raft's state: it has no leadership signal to wait on here
	}
}

// soloLeader is a real one-node cluster, leading, with its loops stopped:
// the test sets the status table itself.
func soloLeader(t *testing.T) *Node {
	t.Helper()
	n, err := New(Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1",
		DataDir: t.TempDir(), FSM: fsm.New(), MaxPromoteLag: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	leadAlone(t, n)
	return n
}

func TestNonvoterIsPromotedOnlyOnceCaughtUp(t *testing.T) {
	n := soloLeader(t)
	since := time.Now()
	r := newReconciler(n, since)
	s := raft.Server{ID: "n4", Address: "127.0.0.1:9004", Suffrage: raft.Nonvoter}
	caughtUp := peerStatus{
		NodeStatus: NodeStatus{ID: "n4", RaftAddr: "127.0.0.1:9004", Suffrage: "nonvoter", Term: n.raft.CurrentTerm(), AppliedIndex: 95},
		ok:         true, at: since.Add(time.Millisecond), ref: 100, refLeader: true,
	}
	for _, tc := range []struct {
		name string
		edit func(p *peerStatus)
		want bool
	}{
		{"caught up", func(p *peerStatus) {}, true},
		{"too far behind", func(p *peerStatus) { p.AppliedIndex = 89 }, false},
		{"has not got the entry that added it", func(p *peerStatus) { p.Suffrage = "none" }, false},
		{"last poll failed", func(p *peerStatus) { p.ok = false }, false},
		{"answer from before this leadership", func(p *peerStatus) { p.at = since.Add(-time.Millisecond) }, false},
		{"answer measured while not leading", func(p *peerStatus) { p.refLeader = false }, false},
		{"another term", func(p *peerStatus) { p.Term++ }, false},
		{"another address", func(p *peerStatus) { p.RaftAddr = "127.0.0.1:9999" }, false},
	} {
		p := caughtUp
		tc.edit(&p)
		n.ms.mu.Lock()
		n.ms.peers = map[string]peerStatus{"n4": p}
		n.ms.mu.Unlock()
		if _, got := r.caughtUp(s); got != tc.want {
			t.Errorf("%s: caughtUp = %v, want %v", tc.name, got, tc.want)
		}
		if c := r.promote([]raft.Server{s}); (c != nil) != tc.want {
			t.Errorf("%s: promote = %+v, want a promotion: %v", tc.name, c, tc.want)
		}
	}
}

func TestDeadServerIsReapedOnlyAfterReapAfterAndWithAQuorum(t *testing.T) {
	n := soloLeader(t)
	n.cfg.ReapAfter = time.Hour
	r := newReconciler(n, time.Now())
	self := raft.Server{ID: "n1", Address: raft.ServerAddress(n.RaftAddr()), Suffrage: raft.Voter}
	n3 := raft.Server{ID: "n3", Address: "127.0.0.1:9003", Suffrage: raft.Voter}
	n2 := raft.Server{ID: "n2", Address: "127.0.0.1:9002", Suffrage: raft.Voter}
	setMember := func(alive bool, state memberlist.NodeStateType, down time.Duration) {
		n.membersMu.Lock()
		n.members["n3"] = member{Meta: Meta{ID: "n3", RaftAddr: "127.0.0.1:9003"}, Alive: alive, State: state, Since: time.Now().Add(-down)}
		n.membersMu.Unlock()
	}
	for _, tc := range []struct {
		name    string
		alive   bool
		state   memberlist.NodeStateType
		down    time.Duration
		servers []raft.Server
		reaped  bool
	}{
		{"alive", true, memberlist.StateAlive, 2 * time.Hour, []raft.Server{self, n3}, false},
		{"dead, not long enough: a restart", false, memberlist.StateDead, 59 * time.Minute, []raft.Server{self, n3}, false},
		{"dead longer than reap after", false, memberlist.StateDead, 61 * time.Minute, []raft.Server{self, n3}, true},
		{"left gossip", false, memberlist.StateLeft, time.Second, []raft.Server{self, n3}, true},
		{"dead long, but the voters left lack a quorum", false, memberlist.StateDead, 2 * time.Hour, []raft.Server{self, n2, n3}, false},
	} {
		setMember(tc.alive, tc.state, tc.down)
		c := r.reap(tc.servers)
		if got := c != nil && c.id == "n3"; got != tc.reaped {
			t.Errorf("%s: reap = %+v, want n3 reaped: %v", tc.name, c, tc.reaped)
		}
	}
}
