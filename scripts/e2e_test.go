//go:build unix

// End-to-end test of the watchdog cluster on real processes: it drives
// scripts/cluster-up.sh and scripts/cluster-down.sh, which start three nodes
// (and haproxy) on loopback ports from a free WATCHDOG_PORT_BASE.
//
// e2e_process_test.go has the scripts, pids and ports; e2e_http_test.go the
// HTTP helpers, polling and the background heartbeater.
package scripts_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

const (
	silentService  = "e2e-silent" // one heartbeat, then silence: timeout 2s
	silentTimeout  = 2 * time.Second
	silentDownLine = "down " + silentService
	aliveService   = "e2e-alive" // heartbeats every 500ms throughout: timeout 3s
	aliveTimeout   = 3 * time.Second
	afterFailover  = "e2e-after-failover"
)

// TestClusterEndToEnd runs its phases in order on one cluster: each builds on
// what the ones before left (the running nodes, the heartbeater, the killed
// leader), so a fatal failure in one ends the test.
func TestClusterEndToEnd(t *testing.T) {
	e := newE2E(t)
	e.startCluster()
	e.startHeartbeats()
	e.nodesHealthyAndReady()
	e.heartbeatsThroughEveryEntryPoint()
	e.silentServiceDownOnce()
	e.killLeader()
	e.keepAliveCommitsAfterFailover()
	e.newServiceOnSurvivors()
	e.restartKilledNode()
	e.actionsOverWholeRun()
	e.clusterDown()
	t.Logf("whole run %v (failover: new leader after %v)", time.Since(e.start).Round(time.Millisecond), e.electedAfter.Round(time.Millisecond))
}

// e2e is the state the phases share.
type e2e struct {
	t           *testing.T
	topology    // the cluster's ports
	withHAProxy bool
	scriptsDir  string
	dataDir     string
	actionLog   string
	env         []string
	seenPids    map[int]string // every pid the test saw -> its pid file

	start      time.Time    // before the first cluster-up.sh
	upAt       time.Time    // after it
	silentSent time.Time    // when silentService got its only heartbeat
	hb         *heartbeater // beats aliveService from start to actionsOverWholeRun

	killed       node // the leader killed with -9
	survivors    []node
	electedAfter time.Duration
}

func newE2E(t *testing.T) *e2e {
	withHAProxy := checkPrerequisites(t)
	scriptsDir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	e := &e2e{
		t:           t,
		withHAProxy: withHAProxy,
		scriptsDir:  scriptsDir,
		dataDir:     filepath.Join(tmp, "cluster"),
		actionLog:   filepath.Join(tmp, "actions.log"),
		seenPids:    map[int]string{},
		topology:    freeTopology(t),
	}
	e.env = scriptEnv(e.dataDir, writeConfig(t, tmp, e.actionLog), e.base)
	t.Cleanup(e.cleanup)
	return e
}

// cleanup shows the logs of a failed run, and stops the cluster whatever
// happened, killing what cluster-down.sh left running.
func (e *e2e) cleanup() {
	t := e.t
	if t.Failed() {
		for _, n := range e.nodes {
			logFile := filepath.Join(e.dataDir, n.id, "watchdog.log")
			t.Logf("----- %s: end of %s -----\n%s", n.id, logFile, tailFile(logFile, 40))
		}
		if e.withHAProxy {
			t.Logf("----- haproxy: end of haproxy.log -----\n%s", tailFile(filepath.Join(e.dataDir, "haproxy.log"), 20))
		}
		t.Logf("----- actions log -----\n%s", readFileString(e.actionLog))
	}
	e.recordPids()
	if _, err := e.runScript(time.Minute, "cluster-down.sh"); err != nil {
		t.Errorf("cluster-down.sh in cleanup: %v", err)
	}
	for pid, f := range e.aliveSeenPids() {
		t.Errorf("pid %d (%s) still alive after cluster-down.sh; killing it", pid, f)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// writeConfig writes the exec action script, which appends "EVENT SERVICE"
// to actionLog, and the watchdog config; it returns the config's path.
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

// entryURLs is haproxy, when there is one, followed by the URLs of ns.
func (e *e2e) entryURLs(ns []node) []string {
	urls := nodeURLs(ns)
	if e.withHAProxy {
		urls = append([]string{e.haproxyURL}, urls...)
	}
	return urls
}

func (e *e2e) startCluster() {
	t := e.t
	e.start = time.Now()
	if out, err := e.runScript(5*time.Minute, "cluster-up.sh"); err != nil {
		t.Fatalf("cluster-up.sh: %v\n%s", err, out)
	}
	e.recordPids()
	t.Logf("cluster-up.sh took %v (including a build, if one was needed)", time.Since(e.start).Round(time.Millisecond))
	e.upAt = time.Now()

	for _, f := range e.allPidFiles() {
		if f == e.haproxyPidFile() && !e.withHAProxy {
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
}

// startHeartbeats gives silentService its one heartbeat and starts beating
// aliveService first thing after cluster-up.sh, so neither is ever left
// without a first heartbeat.
func (e *e2e) startHeartbeats() {
	targets := e.entryURLs(e.nodes)
	e.silentSent = time.Now()
	heartbeatUntilOK(e.t, targets, silentService, 5*time.Second)

	e.hb = newHeartbeater(aliveService, targets)
	go e.hb.run()
	e.t.Cleanup(e.hb.halt)
}

func (e *e2e) nodesHealthyAndReady() {
	t := e.t
	for _, n := range e.nodes {
		if code, err := status(http.MethodGet, n.url+"/healthz"); err != nil || code != http.StatusOK {
			t.Errorf("%s GET /healthz = %d, %v; want 200", n.id, code, err)
		}
		waitForReady(t, n, 5*time.Second)
	}
	var cv clusterView
	if code, err := getJSON(e.nodes[0].url+"/v1/cluster", &cv); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/cluster = %d, %v", code, err)
	}
	if !slices.Contains([]string{"n1", "n2", "n3"}, cv.Leader) || len(cv.Nodes) != 3 {
		t.Fatalf("GET /v1/cluster = %+v; want a leader among n1..n3 and three nodes", cv)
	}
}

// heartbeatsThroughEveryEntryPoint sends a heartbeat for a service of its own
// through each node and haproxy, each in another method and form, and checks
// every node shows every one of them up.
func (e *e2e) heartbeatsThroughEveryEntryPoint() {
	t := e.t
	type via struct {
		name, base, method, form string
	}
	vias := []via{
		{"n1", e.nodes[0].url, http.MethodGet, "query"},
		{"n2", e.nodes[1].url, http.MethodPost, "query"},
		{"n3", e.nodes[2].url, http.MethodPost, "path"},
	}
	if e.withHAProxy {
		vias = append(vias, via{"haproxy", e.haproxyURL, http.MethodHead, "query"})
	}
	for _, v := range vias {
		id := "e2e-via-" + v.name
		// Right after cluster-up.sh every node knows the leader; a 503 would
		// still be within the contract, so it is retried, but only briefly.
		waitFor(t, 3*time.Second, fmt.Sprintf("%s %s heartbeat for %s = 200", v.name, v.method, id), func() (bool, string) {
			code, err := sendHeartbeat(v.base, v.method, v.form, id)
			if err == nil && code != http.StatusOK && code != http.StatusServiceUnavailable {
				t.Fatalf("%s %s heartbeat (%s form) for %s = %d; want 200", v.name, v.method, v.form, id, code)
			}
			return err == nil && code == http.StatusOK, fmt.Sprintf("status %d, err %v", code, err)
		})
	}
	for _, v := range vias {
		for _, n := range e.nodes {
			waitForStatus(t, n, "e2e-via-"+v.name, "up", 5*time.Second)
		}
	}
	e.serviceViews()
	t.Logf("heartbeats through every entry point seen on every node: %v", time.Since(e.upAt).Round(time.Millisecond))
}

// serviceViews checks GET /v1/services/ID for a service never heard of and
// for silentService.
func (e *e2e) serviceViews() {
	t := e.t
	if code, err := status(http.MethodGet, e.nodes[1].url+"/v1/services/e2e-never-seen"); err != nil || code != http.StatusNotFound {
		t.Errorf("GET /v1/services/e2e-never-seen = %d, %v; want 404", code, err)
	}
	var sv serviceView
	if code, err := getJSON(e.nodes[2].url+"/v1/services/"+silentService, &sv); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/services/%s = %d, %v; want 200", silentService, code, err)
	}
	if sv.ID != silentService || sv.Timeout != silentTimeout.String() || !bytes.Contains(sv.Actions, []byte(`"record"`)) {
		t.Errorf("GET /v1/services/%s = %+v; want id %s, timeout %s and the action record", silentService, sv, silentService, silentTimeout)
	}
	if _, err := time.Parse(time.RFC3339, sv.LastSeen); err != nil {
		t.Errorf("GET /v1/services/%s: last_seen %q is not RFC 3339: %v", silentService, sv.LastSeen, err)
	}
}

// silentServiceDownOnce waits for the silent service's down action, which
// must run once, and not before its timeout, and for every node to show it
// down.
func (e *e2e) silentServiceDownOnce() {
	t := e.t
	waitFor(t, time.Until(e.silentSent.Add(silentTimeout+6*time.Second)), "the action log to record "+silentDownLine, func() (bool, string) {
		return countLines(e.actionLog, silentDownLine) >= 1, "actions log: " + strconv.Quote(readFileString(e.actionLog))
	})
	firedAfter := time.Since(e.silentSent)
	t.Logf("%s: down action after %v of silence (timeout %v)", silentService, firedAfter.Round(time.Millisecond), silentTimeout)
	if firedAfter < silentTimeout-100*time.Millisecond {
		t.Errorf("%s: down action ran %v after its heartbeat was sent, before its timeout %v", silentService, firedAfter, silentTimeout)
	}
	if n := countLines(e.actionLog, silentDownLine); n != 1 {
		t.Errorf("action log has %q %d times, want once:\n%s", silentDownLine, n, readFileString(e.actionLog))
	}
	for _, n := range e.nodes {
		waitForStatus(t, n, silentService, "down", 5*time.Second)
	}
}

// killLeader moves the heartbeater to the survivors, kills the leader with
// SIGKILL and measures how long the survivors take to agree on a new one.
func (e *e2e) killLeader() {
	t := e.t
	leader := currentLeader(t, e.nodes)
	for _, n := range e.nodes {
		if n.id == leader {
			e.killed = n
		} else {
			e.survivors = append(e.survivors, n)
		}
	}
	leaderPid, err := readPid(e.pidFile(leader))
	if err != nil {
		t.Fatal(err)
	}
	e.hb.setTargets(e.entryURLs(e.survivors))
	killedAt := time.Now()
	if err := syscall.Kill(leaderPid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d (leader %s): %v", leaderPid, leader, err)
	}
	waitFor(t, 5*time.Second, fmt.Sprintf("leader %s (pid %d) to die", leader, leaderPid), func() (bool, string) {
		return !processAlive(leaderPid), "still alive"
	})
	newLeader := waitForNewLeader(t, e.survivors, leader, 20*time.Second)
	e.electedAfter = time.Since(killedAt)
	t.Logf("killed leader %s (pid %d); %s elected after %v", leader, leaderPid, newLeader, e.electedAfter.Round(time.Millisecond))
}

// keepAliveCommitsAfterFailover waits for the alive service's heartbeats to
// be committed again under the new leader.
func (e *e2e) keepAliveCommitsAfterFailover() {
	okAtElection := e.hb.stats().ok
	waitFor(e.t, 10*time.Second, aliveService+" heartbeats to succeed again after the failover", func() (bool, string) {
		s := e.hb.stats()
		return s.ok >= okAtElection+2, s.String()
	})
}

// newServiceOnSurvivors registers a service first heard of after the
// failover, through haproxy when there is one, and waits for every survivor
// to show it up.
func (e *e2e) newServiceOnSurvivors() {
	targets := nodeURLs(e.survivors)
	if e.withHAProxy {
		targets = []string{e.haproxyURL}
	}
	heartbeatUntilOK(e.t, targets, afterFailover, 10*time.Second)
	for _, n := range e.survivors {
		waitForStatus(e.t, n, afterFailover, "up", 5*time.Second)
	}
}

// restartKilledNode re-runs cluster-up.sh, which must start only the killed
// node and leave the running processes alone, and waits for that node to
// catch up with what was committed while it was down.
func (e *e2e) restartKilledNode() {
	t := e.t
	before := map[string]int{}
	for _, f := range e.allPidFiles() {
		if pid, err := readPid(f); err == nil {
			before[f] = pid
		}
	}
	restartAt := time.Now()
	if out, err := e.runScript(2*time.Minute, "cluster-up.sh"); err != nil {
		t.Fatalf("cluster-up.sh (restart of %s): %v\n%s", e.killed.id, err, out)
	}
	e.recordPids()
	for f, pid := range before {
		now, err := readPid(f)
		switch {
		case f == e.pidFile(e.killed.id):
			if err != nil || now == pid || !processAlive(now) {
				t.Errorf("%s: want a new running pid after the restart, had %d, now %d (%v)", f, pid, now, err)
			}
		case err != nil || now != pid:
			t.Errorf("%s: cluster-up.sh restarted a running process: pid was %d, now %d (%v)", f, pid, now, err)
		}
	}
	waitFor(t, 15*time.Second, e.killed.id+" to catch up and show "+afterFailover, func() (bool, string) {
		var s serviceView
		code, err := getJSON(e.killed.url+"/v1/services/"+afterFailover, &s)
		return err == nil && code == http.StatusOK && s.ID == afterFailover, fmt.Sprintf("status %d, err %v", code, err)
	})
	waitForReady(t, e.killed, 10*time.Second)
	t.Logf("restarted %s caught up %v after cluster-up.sh was re-run", e.killed.id, time.Since(restartAt).Round(time.Millisecond))
}

// actionsOverWholeRun stops the heartbeater and checks what the actions did
// over the whole run, the failover and restart included: the alive service
// was never declared dead, and the new leader did not alert again for the
// silent one.
func (e *e2e) actionsOverWholeRun() {
	t := e.t
	e.hb.halt()
	s := e.hb.stats()
	t.Logf("%s heartbeats: %s", aliveService, s)
	if n := countLines(e.actionLog, "down "+aliveService); n != 0 {
		t.Errorf("%s got %d down action(s) though it was heartbeated every 500ms (longest gap between committed heartbeats %v, timeout %v):\n%s",
			aliveService, n, s.maxGap.Round(time.Millisecond), aliveTimeout, readFileString(e.actionLog))
	}
	if n := countLines(e.actionLog, silentDownLine); n != 1 {
		t.Errorf("after the failover the action log has %q %d times, want once (a new leader must not alert again):\n%s",
			silentDownLine, n, readFileString(e.actionLog))
	}
}

// clusterDown runs cluster-down.sh, which must remove the pid files and
// leave none of the processes the test saw running.
func (e *e2e) clusterDown() {
	t := e.t
	if out, err := e.runScript(time.Minute, "cluster-down.sh"); err != nil {
		t.Fatalf("cluster-down.sh: %v\n%s", err, out)
	}
	for _, f := range e.allPidFiles() {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after cluster-down.sh (stat: %v)", f, err)
		}
	}
	for pid, f := range e.aliveSeenPids() {
		t.Errorf("pid %d (from %s) still running after cluster-down.sh", pid, f)
	}
}
