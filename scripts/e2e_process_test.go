//go:build unix

package scripts_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const host = "127.0.0.1"

type node struct {
	id   string
	url  string
	port int
}

// topology is where scripts/lib.sh puts a cluster for a WATCHDOG_PORT_BASE:
// haproxy on the base, node i's HTTP on base+i, Raft on base+100+i, gossip
// on base+200+i.
type topology struct {
	base                   int
	haproxyURL             string
	nodes                  []node
	raftPorts, gossipPorts []int
}

func topologyAt(base int) topology {
	tp := topology{base: base, haproxyURL: fmt.Sprintf("http://%s:%d", host, base)}
	for i := 1; i <= 3; i++ {
		tp.nodes = append(tp.nodes, node{fmt.Sprintf("n%d", i), fmt.Sprintf("http://%s:%d", host, base+i), base + i})
		tp.raftPorts = append(tp.raftPorts, base+100+i)
		tp.gossipPorts = append(tp.gossipPorts, base+200+i)
	}
	return tp
}

// busyPorts lists the ports of tp that cannot be bound on loopback now.
func (tp topology) busyPorts() []string {
	tcp := []int{tp.base}
	for _, n := range tp.nodes {
		tcp = append(tcp, n.port)
	}
	tcp = append(append(tcp, tp.raftPorts...), tp.gossipPorts...)
	var busy []string
	for _, p := range tcp {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			busy = append(busy, fmt.Sprintf("tcp %d (%v)", p, err))
			continue
		}
		l.Close()
	}
	for _, p := range tp.gossipPorts {
		c, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			busy = append(busy, fmt.Sprintf("udp %d (%v)", p, err))
			continue
		}
		c.Close()
	}
	return busy
}

// freeTopology picks a WATCHDOG_PORT_BASE whose ports are all free, so that
// a cluster of `make cluster` (or another test's) can run meanwhile. Another
// process could take a port between this check and the nodes' start: the
// script then says which.
func freeTopology(t *testing.T) topology {
	t.Helper()
	var last []string
	for range 50 {
		tp := topologyAt(20000 + 10*rand.IntN(4000)) // 20000-59990, leaving room for +203
		if last = tp.busyPorts(); len(last) == 0 {
			return tp
		}
	}
	t.Fatalf("no free WATCHDOG_PORT_BASE found; last tried had busy:\n  %s", strings.Join(last, "\n  "))
	return topology{}
}

// checkPrerequisites skips the test when the tools it needs are missing,
// except in CI, where a missing tool is a failure. It reports whether
// haproxy is there.
func checkPrerequisites(t *testing.T) (withHAProxy bool) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: starts a real three-node cluster; skipped with -short")
	}
	inCI := os.Getenv("CI") != ""
	if runtime.GOOS != "linux" {
		t.Skipf("end-to-end test: the cluster scripts need Linux (setsid, /proc), this is %s", runtime.GOOS)
	}
	for _, tool := range []string{"bash", "curl", "setsid", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if inCI {
				t.Fatalf("%s is required by the end-to-end test (scripts/ci-deps.sh installs the system tools): %v", tool, err)
			}
			t.Skipf("end-to-end test: %s not found: %v", tool, err)
		}
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		if inCI {
			t.Fatalf("haproxy is required in CI (run scripts/ci-deps.sh): %v", err)
		}
		t.Log("haproxy not installed: skipping the load-balancer part (scripts/ci-deps.sh installs it)")
		return false
	}
	return true
}

// scriptEnv is this process's environment without WATCHDOG_* settings (a
// developer's WATCHDOG_JOIN must not leak into the nodes), plus the data
// directory and config of this test. WATCHDOG_LOG_LEVEL is kept for debugging.
func scriptEnv(dataDir, configFile string, base int) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WATCHDOG_") && !strings.HasPrefix(kv, "WATCHDOG_LOG_LEVEL=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "WATCHDOG_DATA="+dataDir, "WATCHDOG_PORT_BASE="+strconv.Itoa(base))
	if configFile != "" {
		env = append(env, "WATCHDOG_CONFIG="+configFile)
	}
	return env
}

// runScript runs one of the scripts with bash, logs its output and returns it.
func (e *e2e) runScript(timeout time.Duration, name string) (string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(e.scriptsDir, name))
	cmd.Env = e.env
	cmd.Stdin = nil
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	e.t.Logf("$ %s (%v)\n%s", name, time.Since(start).Round(time.Millisecond), out)
	return string(out), err
}

func (e *e2e) pidFile(id string) string { return filepath.Join(e.dataDir, id, "watchdog.pid") }

func (e *e2e) haproxyPidFile() string { return filepath.Join(e.dataDir, "haproxy.pid") }

func (e *e2e) allPidFiles() []string {
	return []string{e.pidFile("n1"), e.pidFile("n2"), e.pidFile("n3"), e.haproxyPidFile()}
}

// recordPids remembers every pid in the pid files, to check at the end (and
// to kill as a last resort) that nothing is left running.
func (e *e2e) recordPids() {
	for _, f := range e.allPidFiles() {
		if pid, err := readPid(f); err == nil {
			e.seenPids[pid] = f
		}
	}
}

// aliveSeenPids returns the recorded pids that are still running, with the
// pid file each was read from.
func (e *e2e) aliveSeenPids() map[int]string {
	alive := map[int]string{}
	for pid, f := range e.seenPids {
		if processAlive(pid) {
			alive[pid] = f
		}
	}
	return alive
}

func readPid(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: bad pid %q", file, b)
	}
	return pid, nil
}

// processAlive reports whether pid exists and is not a zombie: the nodes are
// orphans, and an init that does not reap leaves a killed one as a zombie
// that kill(pid, 0) still finds.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// "pid (comm) state ...": comm may contain spaces and parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

func readFileString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

func countLines(path, line string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for l := range strings.Lines(string(b)) {
		if strings.TrimRight(l, "\r\n") == line {
			n++
		}
	}
	return n
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
