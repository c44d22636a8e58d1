package cluster

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
)

// ErrProtocolNotAgreed refuses a command that some server of the cluster may
// not understand yet: it was introduced by a newer protocol than one of them
// advertises. Nothing was proposed. It lasts until that server is upgraded
// (or removed), so retrying soon does not help: the API answers 409.
var ErrProtocolNotAgreed = errors.New("cluster: not every server understands this command yet")

// checkProtocol refuses c unless every server of the Raft configuration
// (voters and non-voters: both apply the log) advertises, or last advertised
// before it died, a protocol that can apply it: one that knows its kind and
// the format it is written in (fsm.CommandProtocol, asked of the table n
// holds: a Define with a schedule needs more than one without). A server gossip never saw counts as
// unknown, the lowest. A dead server counts at its last protocol rather
// than as unknown: the leader's own work (ending maintenance windows) must
// go on while a node is down, and a server that dies after the cluster
// agreed on a protocol would, were it to come back on an older build, stop
// at entries already committed anyway. What the base protocol can apply is
// never checked, as every build can, so the common commands cost nothing.
//
// Internal commands (the watcher's) go through the same check and, when it
// refuses, are retried on the watcher's next tick: there is no older form
// to fall back to, and the base kinds it proposes today always pass.
func (n *Node) checkProtocol(c fsm.Command) error {
	need := n.kinds.CommandProtocol(c)
	if need <= fsm.BaseProtocol {
		return nil
	}
	servers, err := n.servers()
	if err != nil {
		return err
	}
	return protocolShortfall(c.Kind(), need, servers, n.advertisedProtocol)
}

// protocolShortfall is the decision of checkProtocol on its inputs:
// advertised gives a server's protocol, 0 when unknown.
func protocolShortfall(k fsm.Kind, need int, servers []raft.Server, advertised func(raft.Server) int) error {
	for _, s := range servers {
		switch p := advertised(s); {
		case p == 0:
			return fmt.Errorf("%w: command kind %d needs protocol %d; gossip never saw server %s at its address, so its protocol is unknown (upgrade or remove it first)",
				ErrProtocolNotAgreed, k, need, s.ID)
		case p < need:
			return fmt.Errorf("%w: command kind %d needs protocol %d; server %s advertises protocol %d (upgrade it first)",
				ErrProtocolNotAgreed, k, need, s.ID, p)
		}
	}
	return nil
}

// advertisedProtocol is the protocol s advertises in gossip, or advertised
// last if it is dead, or 0 when gossip never saw it at the address the
// configuration has.
func (n *Node) advertisedProtocol(s raft.Server) int {
	if string(s.ID) == n.cfg.NodeID {
		return fsm.ProtocolVersion
	}
	m, ok := n.gossipMember(string(s.ID))
	if !ok || raft.ServerAddress(m.RaftAddr) != s.Address {
		return 0
	}
	return m.Proto
}

// protocolFloor is the lowest protocol that the servers of the
// configuration other than except advertise, among those gossip shows
// alive; 0 when it shows none. Once it is above a build's protocol, the
// leader may have committed commands that build cannot read (checkProtocol
// let them through), so the reconciler adds no node on that build: it
// would stop at the first such entry it replayed.
func (n *Node) protocolFloor(servers []raft.Server, except raft.ServerID) int {
	return lowestProtocol(servers, except, func(s raft.Server) int {
		if m, ok := n.gossipMember(string(s.ID)); ok && !m.Alive {
			return 0
		}
		return n.advertisedProtocol(s)
	})
}

// lowestProtocol is protocolFloor on its inputs: advertised gives a
// server's protocol, 0 when unknown (and then not counted).
func lowestProtocol(servers []raft.Server, except raft.ServerID, advertised func(raft.Server) int) int {
	floor := 0
	for _, s := range servers {
		if p := advertised(s); s.ID != except && p > 0 && (floor == 0 || p < floor) {
			floor = p
		}
	}
	return floor
}
