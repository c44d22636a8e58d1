//go:build unix

// End-to-end test of the watchdog cluster on real processes: it drives
// scripts/cluster-up.sh and scripts/cluster-down.sh, which start three nodes
// (and haproxy) on the fixed loopback ports 8080-8083, 8181-8183, 8281-8283.
package scripts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	host         = "127.0.0.1"
	haproxyURL   = "http://127.0.0.1:8080"
	pollInterval = 100 * time.Millisecond

	silentService = "e2e-silent" // one heartbeat, then silence: timeout 2s
	silentTimeout = 2 * time.Second
	aliveService  = "e2e-alive" // heartbeats every 500ms throughout: timeout 3s
	aliveTimeout  = 3 * time.Second
	afterFailover = "e2e-after-failover"
)

type node struct {
	id   string
	url  string
	port int
}

var nodes = []node{
	{"n1", "http://127.0.0.1:8081", 8081},
	{"n2", "http://127.0.0.1:8082", 8082},
	{"n3", "http://127.0.0.1:8083", 8083},
}

// Raft (TCP) and gossip (TCP and UDP) ports of the three nodes.
var (
	raftPorts   = []int{8181, 8182, 8183}
	gossipPorts = []int{8281, 8282, 8283}
)

// client talks only to loopback: no proxy from the environment, no pooled
// connections that could outlive a killed node.
var client = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
}

type serviceView struct {
	ID       string          `json:"id"`
	Status   string          `json:"status"`
	LastSeen string          `json:"last_seen"`
	Timeout  string          `json:"timeout"`
	Actions  json.RawMessage `json:"actions"`
	Incident json.RawMessage `json:"incident"`
}

type clusterView struct {
	Leader string `json:"leader"`
	Nodes  []struct {
		ID       string `json:"id"`
		HTTPAddr string `json:"http_addr"`
		RaftAddr string `json:"raft_addr"`
		Voter    bool   `json:"voter"`
		Alive    bool   `json:"alive"`
	} `json:"nodes"`
}

func TestClusterEndToEnd(t *testing.T) {
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
	withHAProxy := true
	if _, err := exec.LookPath("haproxy"); err != nil {
		if inCI {
			t.Fatalf("haproxy is required in CI (run scripts/ci-deps.sh): %v", err)
		}
		withHAProxy = false
		t.Log("haproxy not installed: skipping the load-balancer part (scripts/ci-deps.sh installs it)")
	}

	requirePortsFree(t, withHAProxy)

	scriptsDir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	dataDir := filepath.Join(tmp, "cluster")
	actionLog := filepath.Join(tmp, "actions.log")
	configFile := writeConfig(t, tmp, actionLog)
	env := scriptEnv(dataDir, configFile)

	pidFile := func(id string) string { return filepath.Join(dataDir, id, "watchdog.pid") }
	haproxyPidFile := filepath.Join(dataDir, "haproxy.pid")
	allPidFiles := []string{pidFile("n1"), pidFile("n2"), pidFile("n3"), haproxyPidFile}

	// Every pid this test saw, to check at the end (and to kill as a last
	// resort) that nothing is left running.
	var seenMu sync.Mutex
	seenPids := map[int]string{}
	recordPids := func() {
		seenMu.Lock()
		defer seenMu.Unlock()
		for _, f := range allPidFiles {
			if pid, err := readPid(f); err == nil {
				seenPids[pid] = f
			}
		}
	}

	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("----- %s: end of %s -----\n%s", n.id, filepath.Join(dataDir, n.id, "watchdog.log"),
					tailFile(filepath.Join(dataDir, n.id, "watchdog.log"), 40))
			}
			if withHAProxy {
				t.Logf("----- haproxy: end of haproxy.log -----\n%s", tailFile(filepath.Join(dataDir, "haproxy.log"), 20))
			}
			t.Logf("----- actions log -----\n%s", readFileString(actionLog))
		}
		recordPids()
		if _, err := runScript(t, scriptsDir, env, time.Minute, "cluster-down.sh"); err != nil {
			t.Errorf("cluster-down.sh in cleanup: %v", err)
		}
		seenMu.Lock()
		defer seenMu.Unlock()
		for pid, f := range seenPids {
			if processAlive(pid) {
				t.Errorf("pid %d (%s) still alive after cluster-down.sh; killing it", pid, f)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})

	// --- start -------------------------------------------------------------
	start := time.Now()
	if out, err := runScript(t, scriptsDir, env, 5*time.Minute, "cluster-up.sh"); err != nil {
		t.Fatalf("cluster-up.sh: %v\n%s", err, out)
	}
	recordPids()
	t.Logf("cluster-up.sh took %v (including a build, if one was needed)", time.Since(start).Round(time.Millisecond))
	phase := time.Now()

	for _, f := range allPidFiles {
		if f == haproxyPidFile && !withHAProxy {
			continue
		}
		pid, err := readPid(f)
		if err != nil {
			t.Fatalf("after cluster-up.sh: %v", err)
		}
		if !processAlive(pid) {
			t.Fatalf("after cluster-up.sh: pid %d from %s is not running", pid, f)
		}
	}

	// The silent service gets its one heartbeat first thing, and the alive one
	// starts beating, so neither is ever left without a first heartbeat.
	allTargets := nodeURLs(nodes)
	if withHAProxy {
		allTargets = append([]string{haproxyURL}, allTargets...)
	}
	silentSent := time.Now()
	heartbeatUntilOK(t, allTargets, silentService, 5*time.Second)

	hb := newHeartbeater(aliveService, allTargets)
	go hb.run()
	t.Cleanup(hb.halt)

	// --- every node is healthy and ready ---------------------------------------
	for _, n := range nodes {
		if code, err := status(http.MethodGet, n.url+"/healthz"); err != nil || code != http.StatusOK {
			t.Errorf("%s GET /healthz = %d, %v; want 200", n.id, code, err)
		}
		waitFor(t, 5*time.Second, n.id+" GET /readyz = 200", func() (bool, string) {
			code, err := status(http.MethodGet, n.url+"/readyz")
			return err == nil && code == http.StatusOK, fmt.Sprintf("status %d, err %v", code, err)
		})
	}
	var cv clusterView
	if code, err := getJSON(nodes[0].url+"/v1/cluster", &cv); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/cluster = %d, %v", code, err)
	}
	if !slices.Contains([]string{"n1", "n2", "n3"}, cv.Leader) || len(cv.Nodes) != 3 {
		t.Fatalf("GET /v1/cluster = %+v; want a leader among n1..n3 and three nodes", cv)
	}

	// --- heartbeats through every node, and through haproxy --------------------
	type via struct {
		name, base, method, form string
	}
	vias := []via{
		{"n1", nodes[0].url, http.MethodGet, "query"},
		{"n2", nodes[1].url, http.MethodPost, "query"},
		{"n3", nodes[2].url, http.MethodPost, "path"},
	}
	if withHAProxy {
		vias = append(vias, via{"haproxy", haproxyURL, http.MethodHead, "query"})
	}
	for _, v := range vias {
		id := "e2e-via-" + v.name
		// Right after cluster-up.sh every node knows the leader; a 503 would
		// still be within the contract, so it is retried, but only briefly.
		var code int
		var err error
		waitFor(t, 3*time.Second, fmt.Sprintf("%s %s heartbeat for %s = 200", v.name, v.method, id), func() (bool, string) {
			code, err = sendHeartbeat(v.base, v.method, v.form, id)
			if err == nil && code != http.StatusOK && code != http.StatusServiceUnavailable {
				t.Fatalf("%s %s heartbeat (%s form) for %s = %d; want 200", v.name, v.method, v.form, id, code)
			}
			return err == nil && code == http.StatusOK, fmt.Sprintf("status %d, err %v", code, err)
		})
	}
	for _, v := range vias {
		id := "e2e-via-" + v.name
		for _, n := range nodes {
			waitForStatus(t, n, id, "up", 5*time.Second)
		}
	}
	if code, err := status(http.MethodGet, nodes[1].url+"/v1/services/e2e-never-seen"); err != nil || code != http.StatusNotFound {
		t.Errorf("GET /v1/services/e2e-never-seen = %d, %v; want 404", code, err)
	}
	var sv serviceView
	if code, err := getJSON(nodes[2].url+"/v1/services/"+silentService, &sv); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/services/%s = %d, %v; want 200", silentService, code, err)
	}
	if sv.ID != silentService || sv.Timeout != silentTimeout.String() || !bytes.Contains(sv.Actions, []byte(`"record"`)) {
		t.Errorf("GET /v1/services/%s = %+v; want id %s, timeout %s and the action record", silentService, sv, silentService, silentTimeout)
	}
	if _, err := time.Parse(time.RFC3339, sv.LastSeen); err != nil {
		t.Errorf("GET /v1/services/%s: last_seen %q is not RFC 3339: %v", silentService, sv.LastSeen, err)
	}
	t.Logf("heartbeats through every entry point seen on every node: %v", time.Since(phase).Round(time.Millisecond))

	// --- the silent service goes down, and its action runs exactly once -------
	downLine := "down " + silentService
	waitFor(t, time.Until(silentSent.Add(silentTimeout+6*time.Second)), "the action log to record "+downLine, func() (bool, string) {
		return countLines(actionLog, downLine) >= 1, "actions log: " + strconv.Quote(readFileString(actionLog))
	})
	firedAfter := time.Since(silentSent)
	t.Logf("%s: down action after %v of silence (timeout %v)", silentService, firedAfter.Round(time.Millisecond), silentTimeout)
	if firedAfter < silentTimeout-100*time.Millisecond {
		t.Errorf("%s: down action ran %v after its heartbeat was sent, before its timeout %v", silentService, firedAfter, silentTimeout)
	}
	if n := countLines(actionLog, downLine); n != 1 {
		t.Errorf("action log has %q %d times, want once:\n%s", downLine, n, readFileString(actionLog))
	}
	for _, n := range nodes {
		waitForStatus(t, n, silentService, "down", 5*time.Second)
	}

	// --- kill -9 the leader --------------------------------------------------------
	leader := currentLeader(t, nodes)
	var killed node
	var survivors []node
	for _, n := range nodes {
		if n.id == leader {
			killed = n
		} else {
			survivors = append(survivors, n)
		}
	}
	leaderPid, err := readPid(pidFile(leader))
	if err != nil {
		t.Fatal(err)
	}
	survivorTargets := nodeURLs(survivors)
	if withHAProxy {
		survivorTargets = append([]string{haproxyURL}, survivorTargets...)
	}
	hb.setTargets(survivorTargets)
	killedAt := time.Now()
	if err := syscall.Kill(leaderPid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d (leader %s): %v", leaderPid, leader, err)
	}
	waitFor(t, 5*time.Second, fmt.Sprintf("leader %s (pid %d) to die", leader, leaderPid), func() (bool, string) {
		return !processAlive(leaderPid), "still alive"
	})
	var newLeader string
	waitFor(t, 20*time.Second, "a new leader among "+nodeIDs(survivors), func() (bool, string) {
		var seen []string
		for _, n := range survivors {
			var c clusterView
			code, err := getJSON(n.url+"/v1/cluster", &c)
			if err != nil || code != http.StatusOK {
				return false, fmt.Sprintf("%s: GET /v1/cluster = %d, %v", n.id, code, err)
			}
			seen = append(seen, c.Leader)
		}
		newLeader = seen[0]
		ok := newLeader != "" && newLeader != leader && !slices.ContainsFunc(seen, func(s string) bool { return s != newLeader })
		return ok, fmt.Sprintf("leaders seen by %s: %q", nodeIDs(survivors), seen)
	})
	electedAfter := time.Since(killedAt)
	t.Logf("killed leader %s (pid %d); %s elected after %v", leader, leaderPid, newLeader, electedAfter.Round(time.Millisecond))

	// The alive service keeps getting committed heartbeats under the new leader.
	okAtElection := hb.stats().ok
	waitFor(t, 10*time.Second, aliveService+" heartbeats to succeed again after the failover", func() (bool, string) {
		s := hb.stats()
		return s.ok >= okAtElection+2, s.String()
	})

	// --- a new service after the failover, through haproxy -----------------------
	newTargets := nodeURLs(survivors)
	if withHAProxy {
		newTargets = []string{haproxyURL}
	}
	heartbeatUntilOK(t, newTargets, afterFailover, 10*time.Second)
	for _, n := range survivors {
		waitForStatus(t, n, afterFailover, "up", 5*time.Second)
	}

	// --- restart the killed node: cluster-up.sh starts only that one ------------
	before := map[string]int{}
	for _, f := range allPidFiles {
		if pid, err := readPid(f); err == nil {
			before[f] = pid
		}
	}
	restartAt := time.Now()
	if out, err := runScript(t, scriptsDir, env, 2*time.Minute, "cluster-up.sh"); err != nil {
		t.Fatalf("cluster-up.sh (restart of %s): %v\n%s", killed.id, err, out)
	}
	recordPids()
	for f, pid := range before {
		now, err := readPid(f)
		switch {
		case f == pidFile(killed.id):
			if err != nil || now == pid || !processAlive(now) {
				t.Errorf("%s: want a new running pid after the restart, had %d, now %d (%v)", f, pid, now, err)
			}
		case err != nil || now != pid:
			t.Errorf("%s: cluster-up.sh restarted a running process: pid was %d, now %d (%v)", f, pid, now, err)
		}
	}
	waitFor(t, 15*time.Second, killed.id+" to catch up and show "+afterFailover, func() (bool, string) {
		var s serviceView
		code, err := getJSON(killed.url+"/v1/services/"+afterFailover, &s)
		return err == nil && code == http.StatusOK && s.ID == afterFailover, fmt.Sprintf("status %d, err %v", code, err)
	})
	waitFor(t, 10*time.Second, killed.id+" GET /readyz = 200", func() (bool, string) {
		code, err := status(http.MethodGet, killed.url+"/readyz")
		return err == nil && code == http.StatusOK, fmt.Sprintf("status %d, err %v", code, err)
	})
	t.Logf("restarted %s caught up %v after cluster-up.sh was re-run", killed.id, time.Since(restartAt).Round(time.Millisecond))

	// --- what the actions did over the whole run ----------------------------------
	hb.halt()
	s := hb.stats()
	t.Logf("%s heartbeats: %s", aliveService, s)
	if n := countLines(actionLog, "down "+aliveService); n != 0 {
		t.Errorf("%s got %d down action(s) though it was heartbeated every 500ms (longest gap between committed heartbeats %v, timeout %v):\n%s",
			aliveService, n, s.maxGap.Round(time.Millisecond), aliveTimeout, readFileString(actionLog))
	}
	if n := countLines(actionLog, downLine); n != 1 {
		t.Errorf("after the failover the action log has %q %d times, want once (a new leader must not alert again):\n%s",
			downLine, n, readFileString(actionLog))
	}

	// --- stop everything --------------------------------------------------------------
	if out, err := runScript(t, scriptsDir, env, time.Minute, "cluster-down.sh"); err != nil {
		t.Fatalf("cluster-down.sh: %v\n%s", err, out)
	}
	for _, f := range allPidFiles {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after cluster-down.sh (stat: %v)", f, err)
		}
	}
	seenMu.Lock()
	for pid, f := range seenPids {
		if processAlive(pid) {
			t.Errorf("pid %d (from %s) still running after cluster-down.sh", pid, f)
		}
	}
	seenMu.Unlock()
	t.Logf("whole run %v (failover: new leader after %v)", time.Since(start).Round(time.Millisecond), electedAfter.Round(time.Millisecond))
}

// --- setup helpers ------------------------------------------------------------------

// requirePortsFree fails unless every fixed port of scripts/cluster-up.sh can
// be bound on loopback.
func requirePortsFree(t *testing.T, withHAProxy bool) {
	t.Helper()
	var tcp []int
	if withHAProxy {
		tcp = append(tcp, 8080)
	}
	for _, n := range nodes {
		tcp = append(tcp, n.port)
	}
	tcp = append(tcp, raftPorts...)
	tcp = append(tcp, gossipPorts...)
	var busy []string
	for _, p := range tcp {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			busy = append(busy, fmt.Sprintf("tcp %d (%v)", p, err))
			continue
		}
		l.Close()
	}
	for _, p := range gossipPorts {
		c, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			busy = append(busy, fmt.Sprintf("udp %d (%v)", p, err))
			continue
		}
		c.Close()
	}
	if len(busy) > 0 {
		t.Fatalf("the end-to-end test needs the fixed ports of scripts/cluster-up.sh, but these are in use:\n  %s\n"+
			"Is a cluster from `make cluster` still running? Stop it with scripts/cluster-down.sh.",
			strings.Join(busy, "\n  "))
	}
}

// writeConfig writes the exec action script and the watchdog config, and
// returns the config's path.
func writeConfig(t *testing.T, dir, actionLog string) string {
	t.Helper()
	record := filepath.Join(dir, "record.sh")
	script := "#!/bin/sh\nprintf '%s %s\\n' \"$WATCHDOG_EVENT\" \"$WATCHDOG_SERVICE_ID\" >> " + shellQuote(actionLog) + "\n"
	if err := os.WriteFile(record, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(record, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // a JSON string is a YAML string
	config := fmt.Sprintf(`check_interval: 250ms
defaults:
  timeout: 10s
  actions: [log]
actions:
  record:
    exec: [%s]
    timeout: 10s
services:
  %s:
    timeout: %s
    actions: [record]
    on_recovered: [record]
  %s:
    timeout: %s
    actions: [record]
    on_recovered: [record]
`, q(record), silentService, silentTimeout, aliveService, aliveTimeout)
	path := filepath.Join(dir, "watchdog.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// scriptEnv is this process's environment without WATCHDOG_* settings (a
// developer's WATCHDOG_JOIN must not leak into the nodes), plus the data
// directory and config of this test. WATCHDOG_LOG_LEVEL is kept for debugging.
func scriptEnv(dataDir, configFile string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WATCHDOG_") && !strings.HasPrefix(kv, "WATCHDOG_LOG_LEVEL=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "WATCHDOG_DATA="+dataDir, "WATCHDOG_CONFIG="+configFile)
}

// runScript runs one of the scripts with bash, logs its output and returns it.
func runScript(t *testing.T, dir string, env []string, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(dir, name)}, args...)...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("$ %s %s (%v)\n%s", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	return string(out), err
}

// --- process helpers --------------------------------------------------------------

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

// --- HTTP helpers -----------------------------------------------------------------

func nodeURLs(ns []node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.url)
	}
	return out
}

func nodeIDs(ns []node) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.id)
	}
	return strings.Join(out, ",")
}

func status(method, u string) (int, error) {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func getJSON(u string, v any) (int, error) {
	resp, err := client.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: decoding %q: %w", u, body, err)
	}
	return resp.StatusCode, nil
}

// sendHeartbeat sends one heartbeat for id: form "query" is /heartbeat?id=ID
// (GET, POST or HEAD), form "path" is POST /v1/heartbeat/ID.
func sendHeartbeat(base, method, form, id string) (int, error) {
	u := base + "/heartbeat?id=" + url.QueryEscape(id)
	if form == "path" {
		u = base + "/v1/heartbeat/" + url.PathEscape(id)
	}
	return status(method, u)
}

// heartbeatUntilOK sends a heartbeat for id to the targets in turn, moving on
// after a 503 or a connection error as a load balancer would, until one
// answers 200. Any other status fails the test.
func heartbeatUntilOK(t *testing.T, targets []string, id string, timeout time.Duration) {
	t.Helper()
	i := 0
	waitFor(t, timeout, "a 200 for a heartbeat of "+id+" from one of "+strings.Join(targets, " "), func() (bool, string) {
		for range targets {
			base := targets[i%len(targets)]
			i++
			code, err := sendHeartbeat(base, http.MethodPost, "path", id)
			if err == nil && code == http.StatusOK {
				return true, ""
			}
			if err == nil && code != http.StatusServiceUnavailable {
				t.Fatalf("POST %s/v1/heartbeat/%s = %d; want 200 (or 503 without a leader)", base, id, code)
			}
		}
		return false, "every target answered 503 or failed"
	})
}

// waitForStatus polls GET /v1/services/id on n until it shows the status.
func waitForStatus(t *testing.T, n node, id, want string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%s to show %s as %s", n.id, id, want), func() (bool, string) {
		var s serviceView
		code, err := getJSON(n.url+"/v1/services/"+url.PathEscape(id), &s)
		if err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("GET /v1/services/%s = %d, %v", id, code, err)
		}
		return s.ID == id && s.Status == want, fmt.Sprintf("%+v", s)
	})
}

// currentLeader returns the leader the nodes agree on.
func currentLeader(t *testing.T, ns []node) string {
	t.Helper()
	var leader string
	waitFor(t, 5*time.Second, "the nodes to agree on a leader", func() (bool, string) {
		var seen []string
		for _, n := range ns {
			var c clusterView
			if code, err := getJSON(n.url+"/v1/cluster", &c); err != nil || code != http.StatusOK {
				return false, fmt.Sprintf("%s: GET /v1/cluster = %d, %v", n.id, code, err)
			}
			seen = append(seen, c.Leader)
		}
		leader = seen[0]
		return leader != "" && !slices.ContainsFunc(seen, func(s string) bool { return s != leader }), fmt.Sprintf("%q", seen)
	})
	return leader
}

// waitFor polls cond every pollInterval until it holds, or fails the test
// after timeout with what cond last reported.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", timeout.Round(time.Millisecond), what, last)
		}
		time.Sleep(pollInterval)
	}
}

// --- the background heartbeater ------------------------------------------------------

// heartbeater sends a heartbeat for one service every 500ms, trying its
// targets in turn until one commits it (200), and keeps statistics.
type heartbeater struct {
	id       string
	stop     chan struct{}
	done     chan struct{}
	haltOnce sync.Once

	mu      sync.Mutex
	targets []string
	st      hbStats
	lastOK  time.Time
}

type hbStats struct {
	ticks, ok, failedTicks, retries int
	maxGap                          time.Duration
}

func (s hbStats) String() string {
	return fmt.Sprintf("%d ticks, %d committed, %d ticks without a commit, %d retries on another target, longest gap between commits %v",
		s.ticks, s.ok, s.failedTicks, s.retries, s.maxGap.Round(time.Millisecond))
}

func newHeartbeater(id string, targets []string) *heartbeater {
	return &heartbeater{id: id, targets: slices.Clone(targets), stop: make(chan struct{}), done: make(chan struct{})}
}

func (h *heartbeater) setTargets(targets []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.targets = slices.Clone(targets)
}

func (h *heartbeater) stats() hbStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st
}

// halt stops the heartbeater and waits for it; safe to call more than once.
func (h *heartbeater) halt() {
	h.haltOnce.Do(func() { close(h.stop) })
	<-h.done
}

func (h *heartbeater) run() {
	defer close(h.done)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	next := 0
	for {
		h.beat(&next)
		select {
		case <-h.stop:
			return
		case <-tick.C:
		}
	}
}

func (h *heartbeater) beat(next *int) {
	h.mu.Lock()
	targets := h.targets
	h.st.ticks++
	h.mu.Unlock()
	hc := &http.Client{Timeout: time.Second, Transport: client.Transport}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		base := targets[*next%len(targets)]
		*next++
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/heartbeat/"+url.PathEscape(h.id), nil)
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				now := time.Now()
				h.mu.Lock()
				h.st.ok++
				if !h.lastOK.IsZero() {
					h.st.maxGap = max(h.st.maxGap, now.Sub(h.lastOK))
				}
				h.lastOK = now
				h.mu.Unlock()
				return
			}
		}
		h.mu.Lock()
		h.st.retries++
		h.mu.Unlock()
		if attempt%len(targets) == len(targets)-1 {
			// Every target refused this round: back off a little (or stop).
			select {
			case <-h.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	h.mu.Lock()
	h.st.failedTicks++
	h.mu.Unlock()
}

// --- file helpers -------------------------------------------------------------------

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
