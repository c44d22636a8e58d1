package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// Defaults for a LAN cluster. Raft's own defaults (1 s heartbeat and election
// timeouts) are sized for WANs; on a LAN round trips are well under a
// millisecond, so half a second still leaves a wide margin against GC pauses
// and a loaded machine while making failover twice as fast. The lease may
// not exceed the heartbeat timeout: a leader that cannot reach a quorum for
// that long steps down, no later than followers start electing another. It
// is not shorter because a leader stalled for longer than its lease (a CPU
// starved for a quarter second, seen in the chaos suite on 2 loaded cores)
// steps down for nothing and costs a second of unavailability.
const (
	DefaultHeartbeatTimeout  = 500 * time.Millisecond
	DefaultElectionTimeout   = 500 * time.Millisecond
	DefaultLeaderLease       = 500 * time.Millisecond
	DefaultApplyTimeout      = 5 * time.Second
	DefaultReconcileInterval = 5 * time.Second
	DefaultMaxBatch          = 4096
	DefaultMaxInflight       = 1
	// DefaultForwardInflight is how many batches a follower may have on
	// their way to the leader at once (on its stream, forward_stream.go):
	// a batch waiting for its entry does not hold the next.
	DefaultForwardInflight = 4
	// DefaultBatchWindow and DefaultBatchFill shape group commit (see
	// Config.BatchWindow and batcher), as measured in docs/heartbeat-cost.md:
	// an entry costs about 2 ms of CPU over three nodes, so the window
	// bounds that cost to about 0.13 cores at any load, while a heartbeat
	// waits at most two windows (30 ms) and the p99 stays under 50 ms. It
	// is not longer because the pace must stay above a steady client's own
	// (50 heartbeats/s in make bench's idle row): a client as fast as the
	// pace would never catch up after a hiccup. 32 heartbeats make an entry
	// worth starting before its window: their HTTP costs more than it.
	DefaultBatchWindow = 15 * time.Millisecond
	DefaultBatchFill   = 32
	// DefaultSnapshotThreshold and DefaultTrailingLogs keep the log short
	// enough that a restart replays quickly, while a follower that was down
	// for a minute of heavy load still catches up from the log, not a
	// snapshot. Measured (2 cores): a follower takes missed entries from
	// the log at ~20 µs CPU each (BenchmarkCatchUp), so 10 240 of them cost
	// ~0.2 s; a snapshot of 100 000 services costs ~0.65 s of CPU to persist
	// and restore and 7 MB to send (a million: 6.4 s, 71 MB;
	// fsm.BenchmarkSnapshot1M). A snapshot is taken at most every 2–4
	// minutes (Raft's SnapshotInterval) once 8 192 entries have
	// accumulated: under load that is every check, ~2.3 s of CPU per 3
	// minutes at a million services, ~1 % of a core.
	DefaultSnapshotThreshold = 8192
	DefaultTrailingLogs      = 10240
)

// Defaults of membership management.
const (
	// DefaultReapAfter is how long a server may stay dead in gossip before
	// the leader removes it from the Raft configuration, as Consul's
	// autopilot does: long enough for any repair that keeps the disk.
	DefaultReapAfter = 72 * time.Hour
	// DefaultStatusInterval is how often each node asks the others for
	// their Raft status (for promotion, quorum checks and visibility).
	DefaultStatusInterval = time.Second
	// DefaultMaxPromoteLag is how many entries a non-voter may trail the
	// leader by and still be promoted (Consul's MaxTrailingLogs).
	DefaultMaxPromoteLag = 250
	// DefaultMaxReadyLag is how many entries a node may trail the leader's
	// commit index by and still call itself ready.
	DefaultMaxReadyLag = 1000
)

// Config is everything a node needs. Addresses are advertised to the other
// nodes as given, so they must be routable (no 0.0.0.0).
type Config struct {
	NodeID     string
	RaftAddr   string // host:port; port 0 picks one (tests)
	GossipAddr string // host:port; port 0 picks one (tests)
	HTTPAddr   string // the address other nodes forward heartbeats to
	DataDir    string
	// LogStore is the store a new data dir gets (LogStoreWAL or
	// LogStoreBoltDB); "" is DefaultLogStore. A data dir that holds a log
	// keeps its store; when LogStore is set and names the other one, New
	// refuses with ErrLogStoreMismatch (logstore.go).
	LogStore string
	Join     []string
	// BootstrapExpect is how many servers must find each other before the
	// cluster bootstraps itself; 0 means this node only ever joins.
	BootstrapExpect int

	FSM    *fsm.FSM
	Logger *slog.Logger

	HeartbeatTimeout  time.Duration
	ElectionTimeout   time.Duration
	LeaderLease       time.Duration
	ApplyTimeout      time.Duration
	ReconcileInterval time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// SnapshotInterval is how often Raft checks whether SnapshotThreshold
	// entries have gathered since the last snapshot; 0 keeps Raft's own
	// default (2 minutes, jittered).
	SnapshotInterval time.Duration
	// MaxBatch bounds the heartbeats in one entry (or one forwarded batch);
	// MaxInflight bounds the entries in flight at once, ForwardInflight
	// the batches a follower has on their way to the leader.
	// BatchWindow paces the entries while heartbeats keep coming: at most
	// one per window on average that does not hold BatchFill ids (a token
	// bucket, see batcher). A heartbeat on an idle node is committed at
	// once; the others join the next entry. A follower paces its forwards
	// the same way, so a heartbeat waits at most two windows in all. 0
	// starts every batch as soon as a slot is free.
	MaxBatch        int
	MaxInflight     int
	ForwardInflight int
	BatchWindow     time.Duration
	BatchFill       int

	// Membership: see DefaultReapAfter and the others.
	ReapAfter      time.Duration
	StatusInterval time.Duration
	MaxPromoteLag  uint64
	MaxReadyLag    uint64

	// ForwardToken, when set, goes as a bearer token with the heartbeats
	// this node forwards to the leader: it is the ping token, which the
	// leader requires on its forward route too.
	ForwardToken string

	// MaxServices caps how many services the leader lets into the state:
	// a heartbeat or definition for a new id beyond it is refused with
	// ErrTooManyServices. 0 means no cap. RefuseUnknown (auto_register:
	// false) refuses heartbeats for ids not yet defined. Configured are
	// the ids the config file defines, never refused by either.
	MaxServices   int
	RefuseUnknown bool
	Configured    []string
	// TLS, when set, makes Raft mutual TLS and every HTTP call to another
	// node https with the node's certificate (tls.go).
	TLS *TLS
	// GossipKey, when set, encrypts and authenticates gossip (AES-GCM with
	// this 16, 24 or 32-byte key): a node without it cannot join.
	GossipKey []byte
	// Clock is where the node reads the time; nil is the system clock.
	// Tests set one whose wall clock steps.
	Clock Clock
	// ClusterSecret, when set, authenticates the nodes to each other on
	// the internal HTTP routes; it must be the same on every node. Without
	// it the secret is derived from GossipKey, or else generated and shared
	// (secret.go).
	ClusterSecret []byte
	// OnSecretChange is called when the node adopts a peer's generated
	// secret, and with it a new GeneratedAPIToken.
	OnSecretChange func(*Node)
	// Local describes this node's config file, to compare with the
	// committed configuration (configstate.go); nil: not tracked.
	Local *LocalConfig
}

func (c *Config) setDefaults() {
	setDefault(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	setDefault(&c.ElectionTimeout, DefaultElectionTimeout)
	setDefault(&c.LeaderLease, DefaultLeaderLease)
	setDefault(&c.ApplyTimeout, DefaultApplyTimeout)
	setDefault(&c.ReconcileInterval, DefaultReconcileInterval)
	setDefault(&c.SnapshotThreshold, DefaultSnapshotThreshold)
	setDefault(&c.TrailingLogs, DefaultTrailingLogs)
	setDefault(&c.ReapAfter, DefaultReapAfter)
	setDefault(&c.StatusInterval, DefaultStatusInterval)
	setDefault(&c.MaxPromoteLag, DefaultMaxPromoteLag)
	setDefault(&c.MaxReadyLag, DefaultMaxReadyLag)
	setDefault(&c.MaxBatch, DefaultMaxBatch)
	setDefault(&c.MaxInflight, DefaultMaxInflight)
	setDefault(&c.ForwardInflight, DefaultForwardInflight)
	setDefault(&c.BatchFill, DefaultBatchFill)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate reports the first thing wrong with the configuration.
func (c *Config) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("cluster: node id is required")
	case c.DataDir == "":
		return errors.New("cluster: data dir is required")
	case c.FSM == nil:
		return errors.New("cluster: FSM is required")
	case c.LogStore != "" && !ValidLogStore(c.LogStore):
		return fmt.Errorf("cluster: log store %q: want %s or %s", c.LogStore, LogStoreWAL, LogStoreBoltDB)
	case c.BootstrapExpect < 0:
		return errors.New("cluster: bootstrap-expect must not be negative")
	case c.ClusterSecret != nil && len(c.ClusterSecret) < 16:
		return fmt.Errorf("cluster: cluster secret is %d bytes: want at least 16", len(c.ClusterSecret))
	case c.GossipKey != nil && len(c.GossipKey) != 16 && len(c.GossipKey) != 24 && len(c.GossipKey) != 32:
		return fmt.Errorf("cluster: gossip key is %d bytes: want 16, 24 or 32", len(c.GossipKey))
	}
	for name, addr := range map[string]string{"raft": c.RaftAddr, "gossip": c.GossipAddr, "http": c.HTTPAddr} {
		if err := advertisable(addr); err != nil {
			return fmt.Errorf("cluster: %s address: %w", name, err)
		}
	}
	return nil
}

// advertisable checks that other nodes could reach addr as written.
func advertisable(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if host == "" || (ip != nil && ip.IsUnspecified()) {
		return fmt.Errorf("%q is not an address other nodes can reach", addr)
	}
	return nil
}

func (c *Config) commitPolicy() batchPolicy {
	return batchPolicy{max: c.MaxBatch, fill: c.BatchFill, inflight: c.MaxInflight, spacing: c.BatchWindow, burst: defaultBurst}
}

func (c *Config) forwardPolicy() batchPolicy {
	// A forward costs a fraction of an entry, so it needs fewer ids to be
	// worth sending early: then a follower's clients in a closed loop (all
	// waiting, none sending) are not held for its pace. Even on the stream,
	// where a forward is a frame each way, the pace pays: unpaced forwards
	// cost a saturated machine a fifth of its closed-loop throughput
	// (docs/heartbeat-cost.md).
	return batchPolicy{max: c.MaxBatch, fill: max(c.BatchFill/2, 1), inflight: c.ForwardInflight, spacing: c.BatchWindow, burst: defaultBurst}
}
