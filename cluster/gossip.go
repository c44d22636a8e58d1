package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/watchdog-ha/watchdog/fsm"
)

// Meta is what each node tells the others about itself through gossip.
// memberlist refuses metadata above 512 bytes; this stays near 100.
type Meta struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft"`
	HTTPAddr string `json:"http"`
	// HasState is true once the node belongs to a Raft cluster.
	HasState bool `json:"state,omitempty"`
	// Leaving is set by a node on its way out of the cluster (Node.Leave),
	// just before it leaves gossip: the others then know it left, rather
	// than died.
	Leaving bool `json:"leaving,omitempty"`
	// Proto is the protocol version of the build the node runs
	// (fsm.ProtocolVersion): the leader proposes a command kind only once
	// every server advertises a protocol that knows it (protocol.go).
	Proto int `json:"p"`
	// SecretFP and SecretAt are the fingerprint and creation time of the
	// node's generated cluster secret (secret_share.go); empty when its
	// secret is configured or derived from the gossip key.
	SecretFP string `json:"k,omitempty"`
	SecretAt int64  `json:"ka,omitempty"`
}

func (n *Node) openGossip() error {
	host, portStr, err := net.SplitHostPort(n.cfg.GossipAddr)
	if err != nil {
		return fmt.Errorf("cluster: gossip address: %w", err)
	}
	ip, err := net.ResolveIPAddr("ip", host)
	if err != nil {
		return fmt.Errorf("cluster: gossip address: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("cluster: gossip port: %w", err)
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = n.cfg.NodeID
	mc.BindAddr, mc.BindPort = ip.String(), port
	mc.AdvertiseAddr, mc.AdvertisePort = ip.String(), port
	mc.Delegate = gossipDelegate{n}
	mc.Events = gossipEvents{n}
	mc.Logger = n.log.std("gossip")
	// A node that comes back with the same id at a new address is taken at
	// its word after this long, instead of being refused as a conflict.
	mc.DeadNodeReclaimTime = 30 * time.Second
	// With a key every message is encrypted and authenticated, and
	// memberlist's defaults (GossipVerifyIncoming and Outgoing) drop any
	// that is not: a node with another key, or none, is never heard.
	mc.SecretKey = n.cfg.GossipKey
	n.gossip, err = memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("cluster: start gossip: %w", err)
	}
	// Create has filled in the port it bound when asked for port 0.
	n.gossipAddr = net.JoinHostPort(mc.AdvertiseAddr, strconv.Itoa(mc.AdvertisePort))
	return nil
}

func (n *Node) meta() Meta {
	m := Meta{ID: n.cfg.NodeID, RaftAddr: n.RaftAddr(), HTTPAddr: n.cfg.HTTPAddr,
		HasState: n.hasState.Load(), Leaving: n.ms.leaving.Load(), Proto: fsm.ProtocolVersion}
	if n.secret.kind == secretGenerated {
		o := n.secret.offer(false)
		m.SecretFP, m.SecretAt = o.fp, o.created
	}
	return m
}

// gossipDelegate serves our metadata, and a generated cluster secret in the
// push/pull state exchange (secret_share.go).
type gossipDelegate struct{ n *Node }

func (d gossipDelegate) NodeMeta(limit int) []byte {
	b, _ := json.Marshal(d.n.meta())
	if len(b) > limit {
		d.n.log.Error("drop gossip metadata: too large", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}
func (gossipDelegate) NotifyMsg([]byte)                           {}
func (gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d gossipDelegate) LocalState(join bool) []byte              { return d.n.localSecretState() }
func (d gossipDelegate) MergeRemoteState(buf []byte, join bool)   { d.n.mergeSecretState(buf) }

// gossipEvents keeps the member table and passes changes on to the leader's
// reconciler. memberlist calls it under its own lock with nodes it goes on
// mutating, so the node is copied here and nothing blocks: when the queue is
// full the event is dropped and the periodic reconcile catches up.
type gossipEvents struct{ n *Node }

func (e gossipEvents) NotifyJoin(m *memberlist.Node)   { e.observe(m, true) }
func (e gossipEvents) NotifyLeave(m *memberlist.Node)  { e.observe(m, false) }
func (e gossipEvents) NotifyUpdate(m *memberlist.Node) { e.observe(m, true) }

// observe records m as alive or gone. The event says which: memberlist
// never updates the State of the Node it passes (its own state record
// shadows that field), and NotifyLeave means both "left" and "dead". A node
// leaving on purpose says so first, in its metadata (Meta.Leaving) and in its
// status answers (in case the metadata update was overtaken).
func (e gossipEvents) observe(m *memberlist.Node, alive bool) {
	var meta Meta
	if json.Unmarshal(m.Meta, &meta) != nil || meta.ID != m.Name || meta.RaftAddr == "" {
		e.n.log.Warn("ignore gossip member without valid metadata", "name", m.Name, "addr", m.Address())
		return
	}
	state := memberlist.StateAlive
	switch {
	case !alive && (meta.Leaving || e.n.saidLeaving(meta.ID)):
		state = memberlist.StateLeft
	case !alive:
		state = memberlist.StateDead
	}
	e.n.membersMu.Lock()
	since := time.Now()
	if prev, known := e.n.members[meta.ID]; known && prev.State == state {
		since = prev.Since
	}
	e.n.members[meta.ID] = member{Meta: meta, Alive: alive, State: state, Since: since, GossipAddr: m.Address()}
	e.n.membersMu.Unlock()
	if !alive {
		// It has gone (left, or died on its way out): from now on an alive
		// node under this id is a new life, welcome to join again.
		e.n.ms.forgetDeparture(meta.ID)
	}
	select {
	case e.n.events <- struct{}{}:
	default:
	}
}

// member is a gossip member with its parsed metadata.
type member struct {
	Meta
	Alive      bool
	State      memberlist.NodeStateType
	Since      time.Time // when State last changed, as this node saw it
	GossipAddr string
}

// gossipState names a member's gossip state for operators.
func gossipState(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return "unknown"
}

// gossipMembers lists the members gossip has told us of, dead ones included.
func (n *Node) gossipMembers() []member {
	n.membersMu.Lock()
	defer n.membersMu.Unlock()
	out := make([]member, 0, len(n.members))
	for _, m := range n.members {
		out = append(out, m)
	}
	return out
}

// gossipMember returns the member with the given id, if gossip knows it.
func (n *Node) gossipMember(id string) (member, bool) {
	n.membersMu.Lock()
	defer n.membersMu.Unlock()
	m, ok := n.members[id]
	return m, ok
}

// joinLoop joins the gossip seeds, retrying until one answers: nodes of a
// new cluster start in any order.
// Failing to reach a seed is routine while the others start, and said at
// INFO; only after joinWarnAfter of it is it a WARN, once.
func (n *Node) joinLoop(ctx context.Context) {
	wait := 200 * time.Millisecond
	start, warned := time.Now(), false
	for {
		joined, err := n.gossip.Join(n.cfg.Join)
		if joined > 0 {
			n.log.Info("joined gossip", "contacted", joined, "after", time.Since(start).Round(time.Millisecond))
			return
		}
		level := slog.LevelInfo
		if !warned && time.Since(start) >= joinWarnAfter {
			level, warned = slog.LevelWarn, true
		}
		n.log.Log(ctx, level, "join gossip, retrying", "seeds", n.cfg.Join, "for", time.Since(start).Round(time.Second),
			"err", oneLine(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// publishState advertises that this node now belongs to a cluster.
func (n *Node) publishState() {
	if n.hasState.Swap(true) {
		return
	}
	n.updateMeta()
}

// updateMeta gossips our changed metadata. It waits up to a second for the
// broadcast to go out; a failure is only logged, as the next push/pull
// exchange carries the metadata anyway.
func (n *Node) updateMeta() {
	if err := n.gossip.UpdateNode(time.Second); err != nil {
		n.log.Warn("update gossip metadata", "err", err)
	}
}

// joinWarnAfter is how long a node may fail to join before it says so at
// WARN: longer than a cluster's nodes take to start together.
const joinWarnAfter = time.Minute

// oneLine is err's text on one line: memberlist joins the errors of every
// seed in a multi-line list, which a log line must not become.
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
