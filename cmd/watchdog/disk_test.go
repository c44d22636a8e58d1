package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cli"
	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/internal/disktest"
	"github.com/watchdog-ha/watchdog/internal/promtest"
)

// smallDisks gives each of the three nodes a data dir on a filesystem of its
// own, a tmpfs of size bytes, that its test can fill. Mounting needs root.
func smallDisks(t *testing.T, dir string, size int) {
	t.Helper()
	for i := 1; i <= 3; i++ {
		// Mounted before the nodes start, so unmounted after they are killed.
		disktest.Mount(t, filepath.Join(dir, fmt.Sprintf("n%d", i)), size)
	}
}

// fetchURL returns the status and body of a GET.
func fetchURL(url string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// storageMetrics reads a node's storage health gauge and its failed log writes.
func storageMetrics(p *proc) (healthy, logErrors float64, err error) {
	mfs, err := promtest.Scrape("http://" + p.httpAddr + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	healthy, ok := mfs.Value("watchdog_storage_healthy")
	if !ok {
		return 0, 0, errors.New("no watchdog_storage_healthy")
	}
	logErrors, _ = mfs.Value("watchdog_disk_write_errors_total", "op", "log")
	return healthy, logErrors, nil
}

// hasServices reports whether the node's state holds every id.
func hasServices(p *proc, ids []string) (missing []string) {
	var list struct {
		Services []struct{ ID string } `json:"services"`
	}
	status, body := fetchURL("http://" + p.httpAddr + "/v1/services")
	if status != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil {
		return ids
	}
	have := map[string]bool{}
	for _, s := range list.Services {
		have[s.ID] = true
	}
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return missing
}

// diskLoad sends heartbeats for new ids round-robin to the nodes and keeps
// the ids acknowledged, each by the node that acknowledged it.
type diskLoad struct {
	mu    sync.Mutex
	acked map[string][]string // by node id
	seq   atomic.Int64
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func startDiskLoad(procs []*proc) *diskLoad {
	l := &diskLoad{acked: map[string][]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			for _, p := range procs {
				select {
				case <-l.stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				id := fmt.Sprintf("d-%d", l.seq.Add(1))
				if post("http://"+p.httpAddr+"/v1/heartbeat/"+id) == nil {
					l.mu.Lock()
					l.acked[p.id] = append(l.acked[p.id], id)
					l.mu.Unlock()
				}
			}
		}
	}()
	return l
}

func (l *diskLoad) count(node string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked[node])
}

func (l *diskLoad) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, a := range l.acked {
		ids = append(ids, a...)
	}
	return ids
}

func (l *diskLoad) halt() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
}

// logStores are the stores every storage test runs on.
var logStores = []string{cluster.LogStoreWAL, cluster.LogStoreBoltDB}

// TestLeaderWithAFullDiskStepsDownKeepsServingReadsAndRecovers fills the
// leader's disk under a heartbeat load: it must acknowledge nothing it did
// not make durable, step down, say why on /readyz, its metrics and its log,
// keep serving reads, while the others carry on; and once space returns be
// ready again with every acknowledged heartbeat, without a restart. On
// each log store.
func TestLeaderWithAFullDiskStepsDownKeepsServingReadsAndRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three node processes; skipped with -short")
	}
	for _, store := range logStores {
		t.Run(store, func(t *testing.T) { leaderWithAFullDisk(t, store) })
	}
}

func leaderWithAFullDisk(t *testing.T, store string) {
	dir := t.TempDir()
	smallDisks(t, dir, 16<<20)
	config := filepath.Join(dir, "watchdog.yaml")
	if err := os.WriteFile(config, []byte("raft_log_store: "+store+"\ndefaults: {timeout: 1h}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	procs := startProcCluster(t, dir, "", config)
	full := procLeader(t, procs)
	load := startDiskLoad(procs)
	defer load.halt()
	waitFor(t, 10*time.Second, "heartbeats acknowledged", func() bool { return load.count(full.id) > 20 })

	filler := disktest.Fill(t, full.dataDir, 0)
	filled := time.Now()
	waitFor(t, 30*time.Second, full.id+"'s /readyz to say its storage fails", func() bool {
		status, body := fetchURL("http://" + full.httpAddr + "/readyz")
		return status == http.StatusServiceUnavailable && strings.Contains(body, "storage failing")
	})
	_, reason := fetchURL("http://" + full.httpAddr + "/readyz")
	t.Logf("%s /readyz %s after its disk filled: %s", full.id, time.Since(filled).Round(time.Millisecond), strings.TrimSpace(reason))
	if healthy, errs, err := storageMetrics(full); err != nil || healthy != 0 || errs < 1 {
		t.Fatalf("%s metrics: watchdog_storage_healthy %v, watchdog_disk_write_errors_total{op=\"log\"} %v (%v)", full.id, healthy, errs, err)
	}
	if b, _ := os.ReadFile(full.logFile); !bytes.Contains(b, []byte("storage failing")) {
		t.Fatalf("%s did not log its storage failing:\n%s", full.id, tail(full.logFile))
	}

	// The others carry on: another leader, heartbeats through them.
	var others []*proc
	for _, p := range procs {
		if p != full {
			others = append(others, p)
		}
	}
	waitFor(t, 20*time.Second, "a leader other than "+full.id, func() bool {
		id, _, err := leaderVia(others[0].httpAddr)
		return err == nil && id != "" && id != full.id
	})
	before := [2]int{load.count(others[0].id), load.count(others[1].id)}
	waitFor(t, 20*time.Second, "heartbeats acknowledged through the others", func() bool {
		return load.count(others[0].id) > before[0]+20 && load.count(others[1].id) > before[1]+20
	})
	// The full node still runs and serves reads, and does not claim to be ready.
	select {
	case <-full.done:
		t.Fatalf("%s exited with its disk full (%v):\n%s", full.id, full.err, tail(full.logFile))
	default:
	}
	if status, body := fetchURL("http://" + full.httpAddr + "/v1/services"); status != http.StatusOK {
		t.Fatalf("%s does not serve reads with its disk full: %d %s", full.id, status, body)
	}
	if status, _ := fetchURL("http://" + full.httpAddr + "/readyz"); status != http.StatusServiceUnavailable {
		t.Fatalf("%s /readyz %d with its disk still full", full.id, status)
	}

	// Space returns: it is ready again on its own, caught up.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		status, body := fetchURL("http://" + full.httpAddr + "/readyz")
		healthy, _, err := storageMetrics(full)
		if status == http.StatusOK && err == nil && healthy == 1 {
			break
		}
		if time.Now().After(deadline) {
			// Its log says whether its writes still fail or it hears no entries.
			t.Fatalf("%s not ready 60s after space returned: /readyz %d %s; its log:\n%s", full.id, status, body, tail(full.logFile))
		}
	}
	t.Logf("%s ready again %s after space returned", full.id, time.Since(freed).Round(time.Millisecond))
	if b, _ := os.ReadFile(full.logFile); !bytes.Contains(b, []byte("storage recovered")) {
		t.Fatalf("%s did not log its recovery:\n%s", full.id, tail(full.logFile))
	}
	load.halt()

	// Nothing acknowledged was lost, on any node, the full one included.
	acked := load.all()
	for _, p := range procs {
		waitFor(t, 20*time.Second, fmt.Sprintf("all %d acknowledged heartbeats on %s", len(acked), p.id), func() bool {
			return len(hasServices(p, acked)) == 0
		})
	}
	t.Logf("%d heartbeats acknowledged, %d of them by %s; none lost", len(acked), load.count(full.id), full.id)
}

// TestNodeWithADamagedLogRefusesToStartAndIsReplaced truncates a stopped
// follower's log (raft.db; the WAL's segment): it must refuse to start,
// exit non-zero with an error that names the file and the way out
// docs/operations.md gives, and no panic; the others carry on; and that
// replacement (an empty data dir, the same command line) brings it back
// with everything acknowledged. On each log store.
func TestNodeWithADamagedLogRefusesToStartAndIsReplaced(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three node processes; skipped with -short")
	}
	for _, store := range logStores {
		t.Run(store, func(t *testing.T) { damagedLogReplaced(t, store) })
	}
}

// logFile is the file of a stopped node's log the damage test truncates:
// raft.db, or the WAL's newest segment.
func logFile(t *testing.T, dataDir, store string) string {
	t.Helper()
	if store == cluster.LogStoreBoltDB {
		return filepath.Join(dataDir, "raft.db")
	}
	segments, _ := filepath.Glob(filepath.Join(dataDir, "wal", "*.wal"))
	if len(segments) == 0 {
		t.Fatalf("no WAL segment in %s", dataDir)
	}
	return segments[len(segments)-1]
}

func damagedLogReplaced(t *testing.T, store string) {
	dir := t.TempDir()
	config := filepath.Join(dir, "watchdog.yaml")
	if err := os.WriteFile(config, []byte("raft_log_store: "+store+"\ndefaults: {timeout: 1h}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	procs := startProcCluster(t, dir, "", config)
	leader := procLeader(t, procs)
	var victim *proc
	for _, p := range procs {
		if p != leader {
			victim = p
		}
	}
	load := startDiskLoad(procs)
	defer load.halt()
	waitFor(t, 10*time.Second, "heartbeats acknowledged", func() bool { return load.count(victim.id) > 20 })
	victim.kill(syscall.SIGTERM)
	if err := victim.wait(t); err != nil {
		t.Fatalf("%s: %v", victim.id, err)
	}
	db := logFile(t, victim.dataDir, store)
	info, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(db, info.Size()/2); err != nil {
		t.Fatal(err)
	}

	code, out := runAgentToExit(t, victim)
	t.Logf("%s on a truncated %s: exit status %d: %s", victim.id, filepath.Base(db), code, strings.TrimSpace(out))
	if code != cli.ExitFailed {
		t.Errorf("exit status %d, want %d", code, cli.ExitFailed)
	}
	for _, want := range []string{db, "damaged", "empty data dir", `docs/operations.md, "Replace a node whose disk was lost"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the error does not say %q", want)
		}
	}
	for _, crash := range []string{"panic:", "goroutine ", "fatal error"} {
		if strings.Contains(out, crash) {
			t.Errorf("the node crashed (%q) instead of refusing to start", crash)
		}
	}

	// The others carry on meanwhile.
	var others []*proc
	for _, p := range procs {
		if p != victim {
			others = append(others, p)
		}
	}
	before := load.count(others[0].id) + load.count(others[1].id)
	waitFor(t, 20*time.Second, "heartbeats acknowledged by the others", func() bool {
		return load.count(others[0].id)+load.count(others[1].id) > before+20
	})

	// The replacement docs/operations.md gives: the data dir moved aside, the same command line.
	if err := os.Rename(victim.dataDir, victim.dataDir+".damaged"); err != nil {
		t.Fatal(err)
	}
	startProc(t, victim)
	procLeader(t, procs)
	load.halt()
	acked := load.all()
	waitFor(t, 20*time.Second, fmt.Sprintf("all %d acknowledged heartbeats on the replaced %s", len(acked), victim.id), func() bool {
		return len(hasServices(victim, acked)) == 0
	})
}

// runAgentToExit runs p's command line once more, expecting it to exit by
// itself, and returns its exit status and output.
func runAgentToExit(t *testing.T, p *proc) (int, string) {
	t.Helper()
	argv := append([]string{"agent", "-node-id", p.id, "-data-dir", p.dataDir, "-http-addr", p.httpAddr,
		"-raft-addr", p.raft, "-gossip-addr", p.gossipAddr}, p.args...)
	cmd := exec.Command(os.Args[0], argv...)
	cmd.Env = append(cleanEnv(), runMainEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out.String()
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not exit on a damaged data dir:\n%s", p.id, out.String())
		return 0, ""
	}
}
