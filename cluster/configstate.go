package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
)

// The committed configuration is the cluster's. A node's config file only
// proposes one: the first leader with a file commits it while the cluster
// has none (generation 0), and after that only CommitConfig changes it (PUT
// /v1/config, watchdog config apply). A node restarted without its file, or
// with another one, leads on the committed configuration and reports the
// difference, which is drift.
//
// Actions are the exception: their definitions (commands, URLs,
// credentials) stay in each node's file and the committed configuration
// only names them. A node whose file lacks an action the committed
// configuration names could not run it: it says so (a warning, /readyz not
// ready, missing_actions in its status) and, while it leads, hands
// leadership to a voter that has them all. If no voter has, it keeps
// leading: a leader that cannot run one action still runs the others and
// records the failure, where no leader at all would watch nothing.

// ErrMissingActions is returned by Ready on a node whose config file lacks
// actions the committed configuration names.
var ErrMissingActions = errors.New("cluster: this node's config file lacks actions the committed configuration names")

// LocalConfig describes this node's own config file.
type LocalConfig struct {
	// File is false for a node started without a config file.
	File bool
	// Hash is fsm.ConfigHash of what the file would replicate; ActionsHash
	// the hash of its action definitions (secrets left out).
	Hash, ActionsHash string
	// Actions are the names of the actions this node can run.
	Actions []string
}

// ConfigStatus is how a node's own config file compares with the
// configuration it sees committed.
type ConfigStatus struct {
	File        bool     `json:"file"`
	Hash        string   `json:"hash"`
	ActionsHash string   `json:"actions_hash"`
	Actions     []string `json:"actions"`
	// CommittedHash and Generation are the committed configuration's, as
	// this node has applied it ("" and 0: none committed yet).
	CommittedHash string `json:"committed_hash"`
	Generation    uint64 `json:"generation"`
	// Drift is true when the file would replicate something else than
	// what is committed, or has other action definitions.
	Drift bool `json:"drift"`
	// Missing are the actions the committed configuration names that the
	// file does not define.
	Missing []string `json:"missing_actions,omitempty"`
}

// ConfigStatus compares this node's file with the committed configuration;
// nil when the node was not told about its file (Config.Local).
func (n *Node) ConfigStatus() *ConfigStatus {
	if n.cfg.Local == nil {
		return nil
	}
	return compareConfig(*n.cfg.Local, n.fsm.ConfigInfo())
}

func compareConfig(local LocalConfig, committed fsm.ConfigInfo) *ConfigStatus {
	st := &ConfigStatus{File: local.File, Hash: local.Hash, ActionsHash: local.ActionsHash,
		Actions: local.Actions, CommittedHash: committed.Hash, Generation: committed.Generation}
	if committed.Generation == 0 {
		return st // nothing committed: nothing to differ from
	}
	st.Drift = !local.File || local.Hash != committed.Hash ||
		(committed.ActionsHash != "" && local.ActionsHash != committed.ActionsHash)
	st.Missing = MissingActions(committed.Actions, local.Actions)
	return st
}

// MissingActions are the names in need that have does not hold.
func MissingActions(need, have []string) []string {
	var out []string
	for _, a := range need {
		if !slices.Contains(have, a) {
			out = append(out, a)
		}
	}
	return out
}

// CommitConfig commits c as the cluster's configuration if check, given the
// committed configuration's description, allows it, and returns the
// description after. It runs on the leader only (ErrNotLeader elsewhere).
// Proposals on one node are serialised and each first waits for everything
// earlier leaders committed (a Barrier), so the check sees the latest
// configuration: the first leader's commit of its file (generation 0)
// cannot land after a configuration applied on purpose.
func (n *Node) CommitConfig(ctx context.Context, c fsm.Configure, check func(fsm.ConfigInfo) error) (fsm.ConfigInfo, error) {
	n.configMu.Lock()
	defer n.configMu.Unlock()
	if !n.IsLeader() {
		return fsm.ConfigInfo{}, ErrNotLeader
	}
	if err := waitFuture(ctx, n.raft.Barrier(n.cfg.ApplyTimeout)); err != nil {
		return fsm.ConfigInfo{}, fmt.Errorf("cluster: catch up before committing the configuration: %w", err)
	}
	if err := check(n.fsm.ConfigInfo()); err != nil {
		return n.fsm.ConfigInfo(), err
	}
	if _, err := n.Apply(ctx, c); err != nil {
		return n.fsm.ConfigInfo(), err
	}
	return n.fsm.ConfigInfo(), nil
}

// configWatch remembers what noteConfig last said, so that it speaks only
// when something changed. Only statusLoop uses it.
type configWatch struct {
	missing string
	drift   bool
	known   bool
}

// noteConfig logs when this node's file starts or stops differing from the
// committed configuration, and loudly when it lacks actions.
func (n *Node) noteConfig(w *configWatch) {
	st := n.ConfigStatus()
	if st == nil {
		return
	}
	missing := strings.Join(st.Missing, ",")
	if w.known && missing == w.missing && st.Drift == w.drift {
		return
	}
	args := []any{"node", n.cfg.NodeID, "file_hash", orNone(st.Hash), "committed_hash", st.CommittedHash,
		"generation", st.Generation}
	switch {
	case missing != "":
		n.log.Warn("config file lacks actions the committed configuration names: not ready, and not leading while a voter that has them can",
			append(args, "missing_actions", missing)...)
	case st.Drift:
		n.log.Info("config file differs from the committed configuration, which stays in force (watchdog config apply changes it)", args...)
	case w.known:
		n.log.Info("config file matches the committed configuration", args...)
	}
	*w = configWatch{missing: missing, drift: st.Drift, known: true}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// stepAside runs while this node leads: whenever its file lacks actions
// the committed configuration names, it hands leadership to a voter that
// has them all, if one answers. It returns when ctx ends.
func (n *Node) stepAside(ctx context.Context) {
	tick := time.NewTicker(n.cfg.StatusInterval)
	defer tick.Stop()
	warned := false
	for {
		if st := n.ConfigStatus(); st != nil && len(st.Missing) > 0 {
			target := n.completeVoter()
			switch {
			case target != nil:
				n.log.Warn("hand leadership over: this node's config file lacks actions the committed configuration names",
					"node", n.cfg.NodeID, "to", target.ID, "missing_actions", strings.Join(st.Missing, ","))
				tctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
				err := waitFuture(tctx, n.raft.LeadershipTransferToServer(target.ID, target.Address))
				cancel()
				if err != nil && ctx.Err() == nil {
					n.log.Warn("hand leadership over failed, will retry", "to", target.ID, "err", err)
				}
			case !warned:
				warned = true
				n.log.Warn("leading although this node's config file lacks actions the committed configuration names: no voter that has them answers",
					"node", n.cfg.NodeID, "missing_actions", strings.Join(st.Missing, ","))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// completeVoter is the most caught-up reachable voter whose last status
// says its file has every action the committed configuration names.
func (n *Node) completeVoter() *raft.Server {
	servers, err := n.servers()
	if err != nil {
		return nil
	}
	var best *raft.Server
	var bestApplied uint64
	for i, s := range servers {
		if s.Suffrage != raft.Voter || string(s.ID) == n.cfg.NodeID || !n.reachable(s.ID, s.Address) {
			continue
		}
		p, ok := n.peerStatus(string(s.ID))
		if !ok || p.Config == nil || len(p.Config.Missing) > 0 || p.Config.Generation < n.fsm.ConfigGeneration() {
			continue
		}
		if best == nil || p.AppliedIndex > bestApplied {
			best, bestApplied = &servers[i], p.AppliedIndex
		}
	}
	return best
}

// TransferLeadership hands this node's leadership to the voter id and
// returns once raft has done so (or failed to). Operators move leadership
// to a node this way before maintenance of the others; tests use it.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	servers, err := n.servers()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if string(s.ID) == id && s.Suffrage == raft.Voter {
			if err := waitFuture(ctx, n.raft.LeadershipTransferToServer(s.ID, s.Address)); err != nil {
				return fmt.Errorf("cluster: transfer leadership to %s: %w", id, err)
			}
			return nil
		}
	}
	return fmt.Errorf("cluster: transfer leadership: %s is not a voter", id)
}
