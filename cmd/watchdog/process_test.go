package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
)

// runMainEnv makes the test binary run main instead of the tests: the
// real-process tests start their nodes as this very binary, already built,
// so they need no `go build` of their own.
const runMainEnv = "WATCHDOG_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		runMain(testTunes()...)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// compactEnv, set for a node process, makes its Raft snapshot and compact
// its log often (soak_test.go): every 128 entries, checked every 2 s,
// keeping 128. The soak's load makes about 10 entries a second (heartbeats
// are batched), so the defaults (8192, 2 min, 10240) would not compact at all
// in a short run, and the data dir would still be filling its first log.
const compactEnv = "WATCHDOG_TEST_COMPACT"

func testTunes() []tune {
	if os.Getenv(compactEnv) != "1" {
		return nil
	}
	return []tune{func(c *cluster.Config) {
		c.SnapshotThreshold, c.TrailingLogs, c.SnapshotInterval = 128, 128, 2*time.Second
	}}
}

// proc is a node running as a process of its own.
type proc struct {
	id, dataDir, logFile       string
	bin                        string   // the binary to run; this test binary when empty
	args                       []string // the flags besides id, data dir and addresses
	env                        []string // added to its environment
	httpAddr, raft, gossipAddr string
	cmd                        *exec.Cmd
	done                       chan struct{} // closed once the process has exited
	err                        error         // how it exited, once done
}

var startedLine = regexp.MustCompile(`msg="agent started"`)

// startProcCluster starts three nodes running bin (this test binary when
// empty) that bootstrap together, every one joining the others, as
// scripts/cluster-up.sh does: the same command line then restarts any of
// them.
func startProcCluster(t *testing.T, dir, bin, config string) []*proc {
	t.Helper()
	procs := newProcCluster(t, dir, bin, config)
	for _, p := range procs {
		startProc(t, p)
	}
	return procs
}

// newProcCluster is startProcCluster's three nodes, not started yet.
func newProcCluster(t *testing.T, dir, bin, config string) []*proc {
	t.Helper()
	procs := make([]*proc, 3)
	addrs := freeAddrs(t, 3*len(procs))
	for i := range procs {
		id := fmt.Sprintf("n%d", i+1)
		procs[i] = &proc{id: id, bin: bin, dataDir: filepath.Join(dir, id), logFile: filepath.Join(dir, id+".log"),
			httpAddr: addrs[3*i], raft: addrs[3*i+1], gossipAddr: addrs[3*i+2]}
	}
	for _, p := range procs {
		p.args = []string{"-bootstrap-expect", "3", "-config", config}
		for _, other := range procs {
			if other != p {
				p.args = append(p.args, "-join", other.gossipAddr)
			}
		}
	}
	return procs
}

// startProc starts a node process; again, on a restart.
func startProc(t *testing.T, p *proc) {
	t.Helper()
	old, _ := os.ReadFile(p.logFile)
	starts := len(startedLine.FindAllIndex(old, -1))
	log, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	argv := append([]string{"agent", "-node-id", p.id, "-data-dir", p.dataDir, "-http-addr", p.httpAddr,
		"-raft-addr", p.raft, "-gossip-addr", p.gossipAddr}, p.args...)
	bin := os.Args[0]
	if p.bin != "" {
		bin = p.bin
	}
	p.cmd = exec.Command(bin, argv...)
	p.cmd.Env = append(append(cleanEnv(), runMainEnv+"=1"), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.id, err)
	}
	done := make(chan struct{})
	p.done = done
	go func() {
		p.err = p.cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		p.kill(syscall.SIGKILL)
		<-done
	})
	waitFor(t, 20*time.Second, p.id+" to start", func() bool {
		select {
		case <-p.done:
			t.Fatalf("%s exited at start (%v):\n%s", p.id, p.err, tail(p.logFile))
		default:
		}
		b, _ := os.ReadFile(p.logFile)
		return len(startedLine.FindAllIndex(b, -1)) > starts
	})
}

// freeAddrs returns n distinct loopback addresses whose ports are free for
// TCP and UDP (gossip uses both) right now: all are held until all are
// found, so none is handed out twice. The flags refuse port 0, so ports are
// found free just before the nodes start; another process could take one in
// between: the node then fails to start, and its log, shown, says which.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for tries := 0; len(addrs) < n; tries++ {
		if tries > 10*n {
			t.Fatal("no free loopback ports for both TCP and UDP")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ln)
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil {
			continue
		}
		held = append(held, pc)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// cleanEnv is this environment without WATCHDOG_ settings, which would
// reach the nodes' flags.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WATCHDOG_") {
			env = append(env, kv)
		}
	}
	return env
}

// apiToken is the API token the node generated when its config sets no
// api_token (the management routes need it), read from its data dir as
// the CLI reads it with WATCHDOG_TOKEN_FILE: the same on every node once
// the cluster has formed. "" when there is none.
func (p *proc) apiToken() string {
	b, _ := os.ReadFile(p.tokenFile())
	return strings.TrimSpace(string(b))
}

// tokenFile is where the node keeps its generated API token.
func (p *proc) tokenFile() string { return filepath.Join(p.dataDir, cluster.APITokenFile) }

// kill signals the process unless it has exited; it does not wait.
func (p *proc) kill(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// wait waits for the process to exit and returns its error.
func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit:\n%s", p.id, tail(p.logFile))
		return nil
	}
}

func tail(file string) string {
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// leaderVia asks a node who leads and how many voters it sees.
func leaderVia(httpAddr string) (leader string, voters int, err error) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + httpAddr + "/v1/cluster")
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var cl apiCluster
	if err := json.NewDecoder(resp.Body).Decode(&cl); err != nil {
		return "", 0, err
	}
	for _, n := range cl.Nodes {
		if n.Voter {
			voters++
		}
	}
	return cl.Leader, voters, nil
}

// procLeader waits until every running node names the same leader with
// three voters, and returns it.
func procLeader(t *testing.T, procs []*proc) *proc {
	t.Helper()
	var leader *proc
	waitFor(t, 30*time.Second, "the processes to agree on a leader and 3 voters", func() bool {
		leader = nil
		var seen string
		for _, p := range procs {
			id, voters, err := leaderVia(p.httpAddr)
			if err != nil || id == "" || voters != 3 || (seen != "" && id != seen) {
				return false
			}
			seen = id
		}
		for _, p := range procs {
			if p.id == seen {
				leader = p
			}
		}
		return leader != nil && readyAll(procs)
	})
	return leader
}

func readyAll(procs []*proc) bool {
	for _, p := range procs {
		if post("http://"+p.httpAddr+"/v1/heartbeat/probe") != nil {
			return false
		}
	}
	return true
}

// failover signals the leader and measures, from the signal, how long until
// another node names a new leader, and until a heartbeat sent to a survivor
// is committed again.
func failover(t *testing.T, procs []*proc, leader *proc, sig syscall.Signal) (elected, writable time.Duration) {
	t.Helper()
	var survivor *proc
	for _, p := range procs {
		if p != leader {
			survivor = p
		}
	}
	start := time.Now()
	leader.kill(sig)
	for elected == 0 || writable == 0 {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("no failover within 30s after %v of %s", sig, leader.id)
		}
		if id, _, err := leaderVia(survivor.httpAddr); elected == 0 && err == nil && id != "" && id != leader.id {
			elected = time.Since(start)
		}
		if writable == 0 && post("http://"+survivor.httpAddr+"/v1/heartbeat/failover") == nil {
			writable = time.Since(start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return elected, writable
}

func TestSIGTERMOfTheLeaderHandsOverWhereKillWaitsForAnElection(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three node processes; skipped with -short")
	}
	dir := t.TempDir()
	// A long timeout: the services the test beats must not go down.
	config := filepath.Join(dir, "watchdog.yaml")
	if err := os.WriteFile(config, []byte("defaults: {timeout: 1h}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	procs := startProcCluster(t, dir, "", config)
	leader := procLeader(t, procs)

	// SIGTERM: the leader hands over, exits 0, and stays in the configuration.
	termElected, termWritable := failover(t, procs, leader, syscall.SIGTERM)
	if err := leader.wait(t); err != nil {
		t.Fatalf("%s exited with %v after SIGTERM:\n%s", leader.id, err, tail(leader.logFile))
	}
	if b, _ := os.ReadFile(leader.logFile); !bytes.Contains(b, []byte("handed leadership over before stopping")) {
		t.Fatalf("%s did not hand leadership over:\n%s", leader.id, tail(leader.logFile))
	}
	startProc(t, leader) // a restart, same addresses and data
	leader = procLeader(t, procs)

	// kill -9: the others wait out the heartbeat timeout and elect.
	killElected, killWritable := failover(t, procs, leader, syscall.SIGKILL)
	var exitErr *exec.ExitError
	if err := leader.wait(t); !errors.As(err, &exitErr) {
		t.Fatalf("%s after SIGKILL: %v", leader.id, err)
	}
	t.Logf("SIGTERM of the leader: new leader after %s, heartbeats committed again after %s",
		termElected.Round(time.Millisecond), termWritable.Round(time.Millisecond))
	t.Logf("kill -9 of the leader:  new leader after %s, heartbeats committed again after %s",
		killElected.Round(time.Millisecond), killWritable.Round(time.Millisecond))
	// After kill -9 no follower may even start an election before its
	// heartbeat timeout: the measurement is sound only if that holds.
	if killElected < cluster.DefaultHeartbeatTimeout {
		t.Fatalf("a new leader %s after kill -9, sooner than the heartbeat timeout (%s) allows", killElected, cluster.DefaultHeartbeatTimeout)
	}
	// What docs/operations.md states: the handover gives a new leader within a
	// few round trips, where kill -9 waits for an election timeout. A
	// node that stopped without handing over would leave the others to
	// wait for theirs.
	if termElected >= cluster.DefaultHeartbeatTimeout || termElected >= killElected {
		t.Errorf("SIGTERM: new leader after %s; want it before the heartbeat timeout (%s) and sooner than after kill -9 (%s)",
			termElected, cluster.DefaultHeartbeatTimeout, killElected)
	}
	if termWritable >= killWritable {
		t.Errorf("SIGTERM: heartbeats committed again after %s, no sooner than after kill -9 (%s)", termWritable, killWritable)
	}
}
