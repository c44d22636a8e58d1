package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/internal/buildinfo"
)

// ErrNotLeader is returned when a leader-only operation runs on a follower.
var ErrNotLeader = errors.New("cluster: not the leader")

// ErrNoLeader is returned when no leader is known, so nothing can be committed
// through this node right now.
var ErrNoLeader = errors.New("cluster: no leader")

// Node is one member of the watchdog cluster.
type Node struct {
	cfg    Config
	log    logger
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	store  logStore // logstore.go
	gossip *memberlist.Memberlist
	// gossipAddr is kept apart: memberlist's own view of the local node
	// changes under its lock.
	gossipAddr string
	fsm        *fsm.FSM
	// kinds answers the protocol gate on every proposal (protocol.go).
	kinds fsm.KindTable
	// logStoreKind is the store this node's log is in (LogStoreWAL, ...).
	logStoreKind string

	notifyCh chan bool
	events   chan struct{} // membership changed: reconcile
	// A restore stops the leader's duties while it replaces the state and
	// starts them again after (restore.go), one restore at a time.
	holdCh    chan chan struct{}
	resumeCh  chan struct{}
	restoreMu sync.Mutex
	version   string // of this build, in its status answers

	membersMu sync.Mutex
	members   map[string]member // by node id, from gossip events
	// hasState is advertised in gossip: a node that belongs to a cluster
	// already must keep newcomers from bootstrapping a second one.
	hasState atomic.Bool
	ms       *membershipState // membership.go

	commits   *batcher        // heartbeats committed here, on the leader
	admission *admission      // which new ids the leader lets in (admission.go)
	forwards  *batcher        // heartbeats sent on to the leader
	client    *http.Client    // to the other nodes (peer.go)
	streams   *forwardStreams // this follower's to the leader (forward_stream.go)
	served    servedStreams   // the leader's, from followers (forward_serve.go)
	// streamedHook, set by tests only, sees each streamed batch before
	// its commit: a test holds some there to keep them in flight.
	streamedHook func(ids []string)
	leaders      *leaderWatch // calls to the leader end when it changes (peer.go)
	metrics      *metrics
	storage      *storageHealth // storage.go

	terms         terms         // the leader's time (clock.go)
	secret        *secret       // the cluster secret (secret.go)
	secretChanged chan struct{} // a peer's generated secret was adopted
	// configMu serialises CommitConfig (configstate.go).
	configMu sync.Mutex

	duty LeaderDuty
	stop func()
	wg   sync.WaitGroup
}

// LeaderDuty is the work only the leader does. It runs while this node is
// the established leader and must return when ctx is cancelled, which happens
// when leadership is lost. since is when this leadership caught up with the
// log and took up its duties, in the time Now returns: no service's silence
// counts from before it, as heartbeats could not be committed meanwhile.
type LeaderDuty func(ctx context.Context, since time.Time)

// New opens the node's stores and starts Raft and gossip. Start begins the
// node's work; Close stops it all.
func New(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:      cfg,
		log:      logger{cfg.Logger},
		fsm:      cfg.FSM,
		kinds:    fsm.NewKindTable(),
		notifyCh: make(chan bool, 16),
		events:   make(chan struct{}, 1),
		holdCh:   make(chan chan struct{}),
		resumeCh: make(chan struct{}, 1),
		version:  buildinfo.Read().String(),
		members:  make(map[string]member),
		ms:       newMembershipState(),
		metrics:  newMetrics(),
		terms:    terms{clock: cfg.Clock},
		leaders:  newLeaderWatch(),
		streams:  newForwardStreams(),

		secretChanged: make(chan struct{}, 1),
	}
	if n.terms.clock == nil {
		n.terms.clock = NewSystemClock()
	}
	var err error
	if n.secret, err = openSecret(cfg); err != nil {
		return nil, err
	}
	n.client = newPeerHTTPClient(cfg.TLS)
	n.storage = newStorageHealth(n.log)
	if err := n.openRaft(); err != nil {
		n.closeStores()
		return nil, err
	}
	if err := n.openGossip(); err != nil {
		n.shutdownRaft()
		return nil, err
	}
	n.admission = newAdmission(cfg.MaxServices, !cfg.RefuseUnknown, cfg.Configured, cfg.FSM)
	n.commits = newBatcher(cfg.commitPolicy(), n.metrics.committing(n.commitLocal))
	n.forwards = newBatcher(cfg.forwardPolicy(), n.metrics.forwarding(n.forward))
	n.raft.RegisterObserver(n.metrics.leaderObserver())
	n.raft.RegisterObserver(n.leaders.observer())
	n.stop = func() {}
	return n, nil
}

// Start joins the gossip seeds, bootstraps when enough servers are found,
// takes heartbeats, and runs duty whenever this node is the leader. Raft
// may have signalled leadership already: the buffered channel keeps it.
func (n *Node) Start(duty LeaderDuty) {
	ctx, cancel := context.WithCancel(context.Background())
	n.stop, n.duty = cancel, duty
	n.spawn(func() { n.commits.run(ctx) })
	n.spawn(func() { n.forwards.run(ctx) })
	n.spawn(func() { n.monitorLeadership(ctx) })
	n.spawn(func() { n.bootstrapLoop(ctx) })
	n.spawn(func() { n.statusLoop(ctx) })
	n.spawn(func() { n.secretLoop(ctx) })
	if len(n.cfg.Join) > 0 {
		n.spawn(func() { n.joinLoop(ctx) })
	}
}

func (n *Node) spawn(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

func (n *Node) openRaft() error {
	c := n.cfg
	if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
		return fmt.Errorf("cluster: data dir: %w", err)
	}
	kind, err := chooseLogStore(c.DataDir, c.LogStore)
	if err != nil {
		return err
	}
	if err := checkDataDir(c.DataDir, kind); err != nil {
		return err
	}
	store, err := openLogStore(c.DataDir, kind, n.log.hclog("raft-log"))
	if err != nil {
		return err
	}
	if err := readWholeLog(store, storePath(c.DataDir, kind)); err != nil {
		store.Close()
		return err
	}
	n.store, n.logStoreKind = store, kind
	n.log.Info("opened raft log store", "store", kind, "path", storePath(c.DataDir, kind))
	snaps, err := raft.NewFileSnapshotStoreWithLogger(c.DataDir, 2, n.log.hclog("raft"))
	if err != nil {
		return fmt.Errorf("cluster: snapshot store: %w", err)
	}
	resolved, err := net.ResolveTCPAddr("tcp", c.RaftAddr)
	if err != nil {
		return fmt.Errorf("cluster: raft address: %w", err)
	}
	var advertise net.Addr // nil: the transport advertises the port it bound
	if resolved.Port != 0 {
		advertise = resolved
	}
	if n.trans, err = n.raftTransport(advertise); err != nil {
		return fmt.Errorf("cluster: raft transport: %w", err)
	}
	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return fmt.Errorf("cluster: read raft state: %w", err)
	}
	n.hasState.Store(existing)
	n.raft, err = n.newRaft(store, snaps)
	return err
}

// newRaft starts Raft on the stores. Raft panics on an entry missing from
// its log: that is a damaged log store, reported as such, not a crash.
func (n *Node) newRaft(store raftStore, snaps raft.SnapshotStore) (r *raft.Raft, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, &damagedError{file: storePath(n.cfg.DataDir, n.logStoreKind), problem: fmt.Sprintf("log unreadable: %v", p)}
		}
	}()
	checked := checkedStore{raftStore: store, health: n.storage}
	r, err = raft.NewRaft(n.raftConfig(), n.fsm, checked, checked, checkedSnapshots{SnapshotStore: snaps, health: n.storage}, n.trans)
	if err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	return r, nil
}

// raftTransport is plain TCP, or mutual TLS when the node has TLS
// material: then no peer without a certificate from the CA can send or
// receive a single Raft message.
func (n *Node) raftTransport(advertise net.Addr) (*raft.NetworkTransport, error) {
	const maxPool, timeout = 3, 10 * time.Second
	if n.cfg.TLS == nil {
		return raft.NewTCPTransportWithLogger(n.cfg.RaftAddr, advertise, maxPool, timeout, n.log.hclog("raft-net"))
	}
	stream, err := newTLSStreamLayer(n.cfg.RaftAddr, advertise, n.cfg.TLS)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: maxPool, Timeout: timeout, Logger: n.log.hclog("raft-net"),
	}), nil
}

// Raft's throughput settings, measured on 2 cores with three nodes on the
// WAL (cluster/logstore_bench_test.go):
//   - MaxAppendEntries 256 (Raft's default 64): entries per AppendEntries
//     RPC and per fsync on a follower. A follower that missed 20 000 entries
//     caught up in 0.37–0.45 s at 17–20 µs CPU per entry, against 0.45–0.53 s
//     and 20–21 µs at 64 (BenchmarkCatchUp); 1024 saved a little more CPU
//     but lets one RPC carry up to 1024 entries of up to 4096 heartbeats.
//   - BatchApplyCh: Applies queue in a buffered channel and the leader
//     writes all the queued ones in one append: with 16 in flight, 5 500–6 000
//     entries/s at 150 µs CPU each against 2 750–4 200/s at 140–225 µs with
//     Raft's defaults (BenchmarkRaftTuning, noisy). With one commit in flight
//     it changes nothing.
const (
	maxAppendEntries = 256
	batchApplyCh     = true
)

func (n *Node) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLease
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.TrailingLogs = n.cfg.TrailingLogs
	if n.cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = n.cfg.SnapshotInterval
	}
	rc.MaxAppendEntries = maxAppendEntries
	rc.BatchApplyCh = batchApplyCh
	rc.NotifyCh = n.notifyCh
	rc.Logger = n.log.hclog("raft")
	return rc
}

// Close stops the node in reverse order of dependency: background loops
// (and with them the leader's duties), gossip, Raft, and the stores last,
// once Raft can no longer touch them. The node does not leave the Raft
// configuration: a restart is not a decommission.
func (n *Node) Close() error {
	n.stop()
	// Streams are not the HTTP server's to close; their readers are among
	// the goroutines waited for.
	n.closeStreams()
	n.served.closeAll()
	n.wg.Wait()
	var errs []error
	if err := n.gossip.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("gossip: %w", err))
	}
	errs = append(errs, n.shutdownRaft())
	n.client.CloseIdleConnections()
	return errors.Join(errs...)
}

func (n *Node) shutdownRaft() error {
	var errs []error
	if err := n.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("raft: %w", err))
	}
	if err := n.trans.Close(); err != nil {
		errs = append(errs, fmt.Errorf("raft transport: %w", err))
	}
	errs = append(errs, n.closeStores())
	return errors.Join(errs...)
}

func (n *Node) closeStores() error {
	if n.store == nil {
		return nil
	}
	if err := n.store.Close(); err != nil {
		return fmt.Errorf("raft log store %s: %w", n.logStoreKind, err)
	}
	return nil
}

// ID returns this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// MaxBatch is the most heartbeats one Raft entry, or one batch a follower
// forwards, carries (batch_size): a leader refuses a larger forwarded batch.
func (n *Node) MaxBatch() int { return n.cfg.MaxBatch }

// FSM returns the node's replicated state, for reads.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// RaftAddr returns the address Raft peers reach this node at.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// GossipAddr returns the address gossip peers reach this node at.
func (n *Node) GossipAddr() string { return n.gossipAddr }

// IsLeader reports whether this node is the Raft leader right now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Snapshot asks Raft to take a snapshot now and compact its log.
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// Apply commits a command through Raft and returns the FSM's response. It
// works only on the leader. After an error other than ErrNotLeader the outcome
// is unknown (the entry may still commit), so commands must be idempotent.
//
// A command that needs a newer protocol than some server advertises (its
// kind, or fields of a newer format: fsm.CommandProtocol) is refused with
// ErrProtocolNotAgreed, before anything is proposed.
func (n *Node) Apply(ctx context.Context, c fsm.Command) (any, error) {
	if err := n.checkProtocol(c); err != nil {
		return nil, err
	}
	b, err := fsm.Encode(c)
	if err != nil {
		return nil, err
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	start := time.Now()
	f := n.raft.Apply(b, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return nil, ErrNotLeader
		}
		return nil, fmt.Errorf("cluster: commit %T: %w", c, err)
	}
	n.metrics.applied(c.Kind(), start)
	switch resp := f.Response().(type) {
	case error:
		return nil, resp
	case fsm.Recoveries:
		// Logged here, by the leader that committed it: once per recovery,
		// as the watcher logs each incident it opens once.
		for _, r := range resp {
			n.log.Info("service recovered", "service", r.Service, "incident", r.Incident,
				"down_for", r.DownFor.Round(time.Millisecond), "flapping", r.Flapping)
		}
	}
	return f.Response(), nil
}

// VerifyLeader confirms with a quorum that this node is still the leader:
// a leader cut off from the majority fails it instead of acting alone.
func (n *Node) VerifyLeader(ctx context.Context) error {
	f := n.raft.VerifyLeader()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LogStore names the store this node keeps its Raft log in: LogStoreWAL
// or LogStoreBoltDB.
func (n *Node) LogStore() string { return n.logStoreKind }

// AppliedIndex returns the index of the last entry applied to the FSM here.
func (n *Node) AppliedIndex() uint64 { return n.raft.AppliedIndex() }

// Stats returns Raft's own counters, for operators and tests.
func (n *Node) Stats() map[string]string { return n.raft.Stats() }
