package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"
)

// Sharing a generated cluster secret over gossip (secret.go says why this is
// safe): each node advertises its secret's fingerprint and age in its
// metadata; one that sees a member whose secret beats its own does a
// push/pull with it (a gossip join), whose state exchange carries the
// secrets both ways, and the loser adopts the winner's.

// secretShareInterval is how often a node looks for a better secret.
const secretShareInterval = 200 * time.Millisecond

// localSecretState is what this node sends in a push/pull: its generated
// secret, or nothing when the secret is configured or derived.
func (n *Node) localSecretState() []byte {
	s := n.secret
	if s.kind != secretGenerated {
		return nil
	}
	s.mu.RLock()
	st := storedSecret{Key: base64.StdEncoding.EncodeToString(s.key), Created: s.created, HasState: n.hasState.Load()}
	s.mu.RUnlock()
	b, _ := json.Marshal(st)
	return b
}

// mergeSecretState adopts a peer's generated secret if it beats ours.
func (n *Node) mergeSecretState(buf []byte) {
	s := n.secret
	if s.kind != secretGenerated || len(buf) == 0 {
		return
	}
	theirs, err := decodeSecret(buf)
	if err != nil {
		n.log.Warn("ignore a peer's cluster secret", "err", err)
		return
	}
	peer := &secret{key: theirs.key, created: theirs.Created}
	remote := offer{hasState: theirs.HasState, created: theirs.Created, fp: peer.fingerprint()}
	if !s.offer(n.hasState.Load()).losesTo(remote) {
		return
	}
	s.mu.Lock()
	s.setKeyLocked(theirs.key, theirs.Created)
	s.mu.Unlock()
	if err := s.save(); err != nil {
		n.log.Error("adopted the cluster's secret but could not keep it", "err", err)
	}
	n.log.Info("adopted the cluster secret of a peer", "fingerprint", remote.fp)
	select {
	case n.secretChanged <- struct{}{}:
	default:
	}
}

// secretLoop keeps this node's generated secret in line with its peers':
// it advertises a change, tells the agent, and pulls a better secret from a
// member that has one.
func (n *Node) secretLoop(ctx context.Context) {
	if n.secret.kind != secretGenerated {
		return
	}
	tick := time.NewTicker(secretShareInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.secretChanged:
			n.updateMeta()
			// The streams served here were admitted under the old secret:
			// their followers open new ones, signed with the new.
			n.served.drop()
			if n.cfg.OnSecretChange != nil {
				n.cfg.OnSecretChange(n)
			}
		case <-tick.C:
			n.pullBetterSecret()
		}
	}
}

// pullBetterSecret does a push/pull with one member whose secret beats
// ours, if there is one.
func (n *Node) pullBetterSecret() {
	ours := n.secret.offer(n.hasState.Load())
	for _, m := range n.gossipMembers() {
		if !m.Alive || m.SecretFP == "" || m.ID == n.cfg.NodeID {
			continue
		}
		if ours.losesTo(offer{hasState: m.HasState, created: m.SecretAt, fp: m.SecretFP}) {
			if _, err := n.gossip.Join([]string{m.GossipAddr}); err != nil {
				n.log.Debug("pull the cluster secret", "from", m.ID, "err", err)
			}
			return
		}
	}
}

// secretAgreed reports whether every alive member that shares a generated
// secret holds ours: a new cluster bootstraps only then, so that it starts
// with one secret.
func (n *Node) secretAgreed() bool {
	if n.secret.kind != secretGenerated {
		return true
	}
	fp := n.secret.fingerprint()
	for _, m := range n.gossipMembers() {
		if m.Alive && m.ID != n.cfg.NodeID && m.SecretFP != "" && m.SecretFP != fp {
			return false
		}
	}
	return true
}
