package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
)

// reconciler is the leader's membership management: it makes one change to
// the Raft configuration at a time, reading the configuration afresh before
// each, in this order of urgency:
//
//  1. remove a stale entry (an id now at another address, or an address now
//     held by another id: a moved or replaced node), so it cannot block
//     elections;
//  2. add a gossip member missing from the configuration, as a non-voter,
//     once it is alive and answers its status poll: it counts towards no
//     quorum while it catches up, so adding a node never stalls writes;
//  3. promote a non-voter that has caught up;
//  4. remove a server that left gossip, or that has been dead for longer
//     than ReapAfter.
//
// A node that comes back under its id and address with an empty data dir
// keeps its entry (as a voter, if it was one) and catches up from a
// snapshot: one entry for it throughout, none stale.
//
// Removals of voters are made only if a quorum of the voters
// left would still be reachable. A server merely down (restarting) is never
// touched before ReapAfter, and the leader never changes its own entry.
type reconciler struct {
	n     *Node
	since time.Time // when this leadership began
	// absent is when this leader first saw a server of the configuration
	// that gossip does not know at all (its clock for reaping).
	absent map[raft.ServerID]time.Time
	// warned rate-limits the log of a change that keeps being refused.
	warned map[string]time.Time
}

// maxChangesPerPass bounds one pass, so that a change that seems to succeed
// but does not stick cannot spin the loop.
const maxChangesPerPass = 8

func newReconciler(n *Node, since time.Time) *reconciler {
	return &reconciler{n: n, since: since, absent: map[raft.ServerID]time.Time{}, warned: map[string]time.Time{}}
}

// change is one change of the Raft configuration.
type change struct {
	verb   string // what it does, for the log
	id     raft.ServerID
	addr   raft.ServerAddress
	reason string
	apply  func(timeout time.Duration) raft.IndexFuture
}

func (r *reconciler) run(ctx context.Context) {
	for range maxChangesPerPass {
		if ctx.Err() != nil {
			return
		}
		servers, err := r.n.servers()
		if err != nil {
			r.n.log.Warn("reconcile", "err", err)
			return
		}
		c := r.next(servers)
		if c == nil {
			return
		}
		r.n.log.Info(c.verb, "id", c.id, "addr", c.addr, "reason", c.reason)
		if err := c.apply(r.n.cfg.ApplyTimeout).Error(); err != nil {
			r.n.log.Warn(c.verb+" failed", "id", c.id, "err", err)
			return
		}
	}
}

func (r *reconciler) next(servers []raft.Server) *change {
	for _, step := range []func([]raft.Server) *change{r.join, r.promote, r.reap} {
		if c := step(servers); c != nil {
			return c
		}
	}
	return nil
}

// join: steps 1 and 2.
func (r *reconciler) join(servers []raft.Server) *change {
	self := raft.ServerID(r.n.cfg.NodeID)
	for _, m := range r.n.gossipMembers() {
		id, addr := raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr)
		// A node that stopped answering may still be alive to gossip for a
		// while (its failure takes seconds to confirm): not added back.
		if !m.Alive || id == self || r.n.ms.departing(m.ID) || !r.n.reachable(id, addr) {
			continue
		}
		present := false
		for _, s := range servers {
			switch {
			case s.ID == id && s.Address == addr:
				present = true
			case (s.ID == id || s.Address == addr) && s.ID != self:
				if c := r.remove(servers, s, fmt.Sprintf("%s is now at %s", m.ID, addr)); c != nil {
					return c
				}
			}
		}
		if floor := r.n.protocolFloor(servers, id); !present && m.Proto < floor {
			r.warnEvery("old build "+m.ID, "not adding a node on an older build: every server runs a newer protocol, "+
				"so the log may hold commands it cannot read", "id", m.ID, "protocol", m.Proto, "servers_protocol", floor)
			continue
		}
		if !present {
			return &change{verb: "add non-voter", id: id, addr: addr, reason: "alive and answering",
				apply: func(t time.Duration) raft.IndexFuture { return r.n.raft.AddNonvoter(id, addr, 0, t) }}
		}
	}
	return nil
}

// promote: step 3.
func (r *reconciler) promote(servers []raft.Server) *change {
	for _, s := range servers {
		if s.Suffrage != raft.Nonvoter {
			continue
		}
		lag, ok := r.caughtUp(s)
		if !ok {
			continue
		}
		id, addr := s.ID, s.Address
		return &change{verb: "promote to voter", id: id, addr: addr, reason: fmt.Sprintf("caught up, %d entries behind", lag),
			apply: func(t time.Duration) raft.IndexFuture { return r.n.raft.AddVoter(id, addr, 0, t) }}
	}
	return nil
}

// caughtUp reports whether the non-voter s has caught up, and its lag: its
// last status answer, polled by this leader, shows it has the entry that
// added it and had applied nearly all this leader had at the moment of the
// answer.
func (r *reconciler) caughtUp(s raft.Server) (lag uint64, ok bool) {
	p, found := r.n.peerStatus(string(s.ID))
	switch {
	case !found || !p.ok || !p.refLeader || p.at.Before(r.since),
		p.Suffrage != "nonvoter", raft.ServerAddress(p.RaftAddr) != s.Address,
		p.Term != r.n.raft.CurrentTerm():
		return 0, false
	}
	if p.ref > p.AppliedIndex {
		lag = p.ref - p.AppliedIndex
	}
	return lag, lag <= r.n.cfg.MaxPromoteLag
}

// reap: step 4.
func (r *reconciler) reap(servers []raft.Server) *change {
	for _, s := range servers {
		if s.ID == raft.ServerID(r.n.cfg.NodeID) {
			continue
		}
		m, known := r.n.gossipMember(string(s.ID))
		if known {
			delete(r.absent, s.ID)
		}
		if (known && m.Alive) || r.n.reachable(s.ID, s.Address) {
			continue
		}
		var reason string
		switch {
		case known && m.State == memberlist.StateLeft:
			reason = "it left gossip"
		case known:
			if down := time.Since(m.Since); down >= r.n.cfg.ReapAfter {
				reason = fmt.Sprintf("dead for %s, longer than dead_server_reap_after %s", down.Round(time.Second), r.n.cfg.ReapAfter)
			}
		default:
			first, seen := r.absent[s.ID]
			if !seen {
				r.absent[s.ID] = time.Now()
			} else if down := time.Since(first); down >= r.n.cfg.ReapAfter {
				reason = fmt.Sprintf("unknown to gossip for %s, longer than dead_server_reap_after %s", down.Round(time.Second), r.n.cfg.ReapAfter)
			}
		}
		if reason == "" {
			continue
		}
		if c := r.remove(servers, s, reason); c != nil {
			return c
		}
	}
	return nil
}

// remove is the removal of s, or nil if it would cost the cluster its quorum.
func (r *reconciler) remove(servers []raft.Server, s raft.Server, reason string) *change {
	if s.Suffrage == raft.Voter && !r.quorumAllows(servers, s.ID, "remove") {
		return nil
	}
	id := s.ID
	return &change{verb: "remove server", id: id, addr: s.Address, reason: reason,
		apply: func(t time.Duration) raft.IndexFuture { return r.n.raft.RemoveServer(id, 0, t) }}
}

// quorumAllows reports whether the voters other than id keep a reachable
// quorum, and logs (at most once a minute per server) when they would not.
func (r *reconciler) quorumAllows(servers []raft.Server, id raft.ServerID, verb string) bool {
	q := r.n.quorumWithout(servers, id)
	if q.ok() {
		return true
	}
	r.warnEvery(verb+" "+string(id), "not changing membership: it would cost the quorum", "verb", verb, "id", id,
		"voters_left", q.remaining, "reachable", q.reachable)
	return false
}

// warnEvery logs a refusal that the next passes will repeat at most once a
// minute per key.
func (r *reconciler) warnEvery(key, msg string, args ...any) {
	if last, ok := r.warned[key]; !ok || time.Since(last) > time.Minute {
		r.warned[key] = time.Now()
		r.n.log.Warn(msg, args...)
	}
}
