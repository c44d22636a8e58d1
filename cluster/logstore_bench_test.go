package cluster

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// BenchmarkLogStore measures what an entry costs in each log store: three
// Raft nodes in this process over loopback TCP, each on its own store in
// its own data dir, exactly as New opens it, with the Raft settings
// raftConfig uses. Entries carry 1 KiB, about 32 heartbeats. Sub-benchmarks:
//
//	seq:   one Apply at a time, so each entry is alone (an idle cluster);
//	par16: 16 Applies in flight, as Raft's pipeline sees under load.
//
// cpu-µs/entry is the whole process's CPU (all three nodes) per entry.
//
//	go test -run '^$' -bench LogStore -benchtime 3000x ./cluster/
func BenchmarkLogStore(b *testing.B) {
	for _, store := range []string{LogStoreWAL, LogStoreBoltDB} {
		for _, inflight := range []int{1, 16} {
			name := fmt.Sprintf("%s/seq", store)
			if inflight > 1 {
				name = fmt.Sprintf("%s/par%d", store, inflight)
			}
			b.Run(name, func(b *testing.B) { benchApply(b, store, inflight, tunedRaft) })
		}
	}
}

// BenchmarkWALSegments compares the WAL's segment layouts: raft-wal's
// preallocated segments at the size this node used before (16 MiB) against
// sparse ones of three sizes, walSegmentSize among them. Run it with
// -count, which repeats the whole set, so the variants alternate:
//
//	go test -run '^$' -bench WALSegments -benchtime 3000x -count 3 ./cluster/
func BenchmarkWALSegments(b *testing.B) {
	for _, variant := range []string{"prealloc-16MiB", "prealloc-4MiB", "sparse-16MiB", "sparse-4MiB", "sparse-1MiB"} {
		for _, inflight := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/inflight=%d", variant, inflight), func(b *testing.B) {
				benchApply(b, "wal:"+variant, inflight, tunedRaft)
			})
		}
	}
}

// openBenchStore opens store as openLogStore does, or the WAL laid out as
// a BenchmarkWALSegments variant ("wal:sparse-4MiB").
func openBenchStore(dir, store string, log hclog.Logger) (logStore, error) {
	var seg walSegments
	if _, err := fmt.Sscanf(store, "wal:prealloc-%dMiB", &seg.size); err == nil {
		seg.preallocate = true
	} else if _, err := fmt.Sscanf(store, "wal:sparse-%dMiB", &seg.size); err != nil {
		return openLogStore(dir, store, log)
	}
	seg.size <<= 20
	walDir := filepath.Join(dir, "wal")
	if err := os.MkdirAll(walDir, 0o750); err != nil {
		return nil, err
	}
	return openWAL(walDir, seg, log, func() {})
}

// BenchmarkRaftTuning compares the Raft settings raftConfig chooses with
// Raft's defaults, on the default store, with 16 Applies in flight.
//
//	go test -run '^$' -bench RaftTuning -benchtime 3000x ./cluster/
func BenchmarkRaftTuning(b *testing.B) {
	variants := map[string]func(*raft.Config){
		"defaults":       func(*raft.Config) {},
		"chosen":         tunedRaft,
		"batch-only":     func(rc *raft.Config) { rc.BatchApplyCh = true },
		"maxappend-only": func(rc *raft.Config) { rc.MaxAppendEntries = maxAppendEntries },
	}
	for _, name := range []string{"defaults", "batch-only", "maxappend-only", "chosen"} {
		b.Run(name, func(b *testing.B) { benchApply(b, DefaultLogStore, 16, variants[name]) })
	}
}

// tunedRaft applies the settings of raftConfig that bear on throughput.
func tunedRaft(rc *raft.Config) {
	rc.MaxAppendEntries = maxAppendEntries
	rc.BatchApplyCh = batchApplyCh
}

func benchApply(b *testing.B, store string, inflight int, tune func(*raft.Config)) {
	leader := benchRaftCluster(b, store, tune)
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	before := cpuTime()
	b.ResetTimer()
	for range inflight {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := leader.Apply(payload, 10*time.Second).Error(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu := cpuTime() - before
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/entry")
}

// cpuTime is the user and system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRaftCluster starts three bootstrapped Raft nodes and returns the
// leader once elected.
func benchRaftCluster(b *testing.B, store string, tune func(*raft.Config)) *raft.Raft {
	leader, _ := benchRaftNodes(b, store, 3, 0, tune)
	return leader
}

type benchNode struct {
	r    *raft.Raft
	addr raft.ServerAddress
}

// benchRaftNodes starts voters bootstrapped nodes and spare ones outside
// the configuration, and returns the leader once elected.
func benchRaftNodes(b *testing.B, store string, voters, spare int, tune func(*raft.Config)) (*raft.Raft, []benchNode) {
	b.Helper()
	logger := hclog.NewNullLogger()
	var servers []raft.Server
	var nodes []benchNode
	for i := range voters + spare {
		dir := b.TempDir()
		ls, err := openBenchStore(dir, store, logger)
		if err != nil {
			b.Fatal(err)
		}
		trans, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, 10*time.Second, logger)
		if err != nil {
			b.Fatal(err)
		}
		snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 1, logger)
		if err != nil {
			b.Fatal(err)
		}
		rc := raft.DefaultConfig()
		rc.LocalID = raft.ServerID(fmt.Sprint("n", i))
		rc.Logger = logger
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = DefaultHeartbeatTimeout,
			DefaultElectionTimeout, DefaultLeaderLease
		tune(rc)
		r, err := raft.NewRaft(rc, &countingFSM{}, ls, ls, snaps, trans)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			r.Shutdown().Error()
			trans.Close()
			ls.Close()
		})
		nodes = append(nodes, benchNode{r, trans.LocalAddr()})
		if i < voters {
			servers = append(servers, raft.Server{ID: rc.LocalID, Address: trans.LocalAddr()})
		}
	}
	if err := nodes[0].r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n.r.State() == raft.Leader {
				return n.r, nodes
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatal("no leader elected")
	return nil, nil
}

// countingFSM applies nothing: the benchmark measures Raft and its store.
type countingFSM struct{ n atomic.Uint64 }

func (f *countingFSM) Apply(*raft.Log) any { f.n.Add(1); return nil }

func (f *countingFSM) Snapshot() (raft.FSMSnapshot, error) { return countingSnap{}, nil }

func (f *countingFSM) Restore(rc io.ReadCloser) error { return rc.Close() }

type countingSnap struct{}

func (countingSnap) Persist(s raft.SnapshotSink) error { return s.Close() }

func (countingSnap) Release() {}

// BenchmarkCatchUp measures how fast a follower that missed 20 000 entries
// of 1 KiB takes them from the leader's log (not from a snapshot), for
// several MaxAppendEntries: entries per AppendEntries RPC, and per fsync
// on the follower.
//
//	go test -run '^$' -bench CatchUp -benchtime 1x ./cluster/
func BenchmarkCatchUp(b *testing.B) {
	for _, perRPC := range []int{64, 256, 1024} {
		b.Run(fmt.Sprint("maxappend-", perRPC), func(b *testing.B) {
			for range b.N {
				benchCatchUp(b, perRPC)
			}
		})
	}
}

func benchCatchUp(b *testing.B, perRPC int) {
	const missed = 20000
	leader, nodes := benchRaftNodes(b, DefaultLogStore, 2, 1, func(rc *raft.Config) {
		tunedRaft(rc)
		rc.MaxAppendEntries = perRPC
		rc.TrailingLogs = 2 * missed
		rc.SnapshotThreshold = 2 * missed
	})
	payload := make([]byte, 1024)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 16 {
		wg.Go(func() {
			for next.Add(1) <= missed {
				if err := leader.Apply(payload, 10*time.Second).Error(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	late := nodes[len(nodes)-1]
	before, start := cpuTime(), time.Now()
	if err := leader.AddVoter(raft.ServerID("n2"), late.addr, 0, 0).Error(); err != nil {
		b.Fatal(err)
	}
	for late.r.AppliedIndex() < leader.LastIndex() {
		time.Sleep(5 * time.Millisecond)
	}
	b.ReportMetric(time.Since(start).Seconds(), "s-catch-up")
	b.ReportMetric(float64((cpuTime()-before).Microseconds())/missed, "cpu-µs/entry")
}
