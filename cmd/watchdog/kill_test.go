package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ackLoad sends heartbeats for new ids from several clients at once, to
// nodes round-robin, and keeps the ids acknowledged (200).
type ackLoad struct {
	mu    sync.Mutex
	acked []string
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startAckLoad(procs []*proc, prefix string, clients int) *ackLoad {
	l := &ackLoad{stop: make(chan struct{})}
	for c := range clients {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				id := fmt.Sprintf("%s-%d-%d", prefix, c, i)
				if post("http://"+procs[i%len(procs)].httpAddr+"/v1/heartbeat/"+id) == nil {
					l.mu.Lock()
					l.acked = append(l.acked, id)
					l.mu.Unlock()
				}
			}
		})
	}
	return l
}

func (l *ackLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// halt stops the clients and returns every id acknowledged.
func (l *ackLoad) halt() []string {
	close(l.stop)
	l.wg.Wait()
	return l.acked
}

// TestKill9UnderLoadLosesNothingAcknowledged kills nodes with SIGKILL while
// clients are writing, restarts them, and checks every heartbeat
// acknowledged before the kill is there, on each log store, round after
// round on the same data dirs (so each start recovers the tail the last
// kill tore). One node alone: every acknowledged entry was made durable by
// that node's own store and nothing else, so the store's recovery is all
// that is tested. Three nodes, all killed at once: an acknowledged entry
// is on two of them, and the restarted cluster must find it.
func TestKill9UnderLoadLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes; skipped with -short")
	}
	for _, store := range logStores {
		t.Run(store+"/one node", func(t *testing.T) { kill9Rounds(t, store, 1) })
		t.Run(store+"/three nodes", func(t *testing.T) { kill9Rounds(t, store, 3) })
	}
}

func kill9Rounds(t *testing.T, store string, nodes int) {
	dir := t.TempDir()
	config := filepath.Join(dir, "watchdog.yaml")
	if err := os.WriteFile(config, []byte("raft_log_store: "+store+"\ndefaults: {timeout: 1h}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	procs := killProcs(t, dir, config, nodes)
	var acked []string
	for round := range 4 {
		load := startAckLoad(procs, fmt.Sprintf("r%d", round), 8)
		waitFor(t, 20*time.Second, "heartbeats acknowledged", func() bool { return load.count() > 300 })
		for _, p := range procs {
			p.kill(syscall.SIGKILL)
		}
		for _, p := range procs {
			_ = p.wait(t) // killed: an error, as expected
		}
		acked = append(acked, load.halt()...)
		for _, p := range procs {
			startProc(t, p)
		}
		waitReady(t, procs)
		for _, p := range procs {
			waitFor(t, 20*time.Second, fmt.Sprintf("all %d acknowledged heartbeats on %s", len(acked), p.id), func() bool {
				return len(hasServices(p, acked)) == 0
			})
		}
		t.Logf("round %d: %d heartbeats acknowledged so far, none lost", round, len(acked))
	}
}

// killProcs starts the nodes of the test: one that bootstraps alone, or
// three as startProcCluster's.
func killProcs(t *testing.T, dir, config string, nodes int) []*proc {
	t.Helper()
	if nodes == 3 {
		procs := startProcCluster(t, dir, "", config)
		procLeader(t, procs)
		return procs
	}
	addrs := freeAddrs(t, 3)
	p := &proc{id: "n1", dataDir: filepath.Join(dir, "n1"), logFile: filepath.Join(dir, "n1.log"),
		httpAddr: addrs[0], raft: addrs[1], gossipAddr: addrs[2],
		args: []string{"-bootstrap-expect", "1", "-config", config}}
	startProc(t, p)
	waitReady(t, []*proc{p})
	return []*proc{p}
}

// waitReady waits until every node commits a heartbeat.
func waitReady(t *testing.T, procs []*proc) {
	t.Helper()
	waitFor(t, 30*time.Second, "every node to commit a heartbeat", func() bool { return readyAll(procs) })
}
