package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cli"
	"github.com/watchdog-ha/watchdog/fsm"
)

// buildWatchdog builds the agent into dir, with the given build tags, and
// returns the binary's path.
func buildWatchdog(t *testing.T, dir, name, tags string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", tags, "-o", bin, ".")
	cmd.Env = cleanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %q: %v\n%s", tags, err, out)
	}
	return bin
}

// restartOn stops p with SIGTERM, as the upgrade procedure of docs/operations.md does,
// starts it again on bin with the same command line and data, and waits
// until `watchdog status` through it exits 0.
func restartOn(t *testing.T, p *proc, bin string) {
	t.Helper()
	p.kill(syscall.SIGTERM)
	if err := p.wait(t); err != nil {
		t.Fatalf("%s exited with %v after SIGTERM:\n%s", p.id, err, tail(p.logFile))
	}
	p.bin = bin
	startProc(t, p)
	waitForStatusOK(t, p)
}

func waitForStatusOK(t *testing.T, p *proc) {
	t.Helper()
	var out, errOut string
	var code int
	waitFor(t, 60*time.Second, "watchdog status through "+p.id+" to exit 0", func() bool {
		out, errOut, code = runCLI(t, nil, "status", "-addr", p.httpAddr)
		return code == cli.ExitOK
	})
	t.Logf("%s back; watchdog status:\n%s%s", p.id, out, errOut)
}

// nextProto is the protocol of the watchdog_nextproto build: one above
// this build's (fsm/protocol_next.go).
const nextProto = fsm.ProtocolVersion + 1

// postNote asks a node for the watchdog_nextproto build's Note command.
func postNote(p *proc, service, text string) (int, string) {
	body, _ := json.Marshal(map[string]string{"text": text})
	c := http.Client{Timeout: 20 * time.Second}
	req, err := http.NewRequest(http.MethodPost, "http://"+p.httpAddr+"/v1/services/"+service+"/note", bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.apiToken())
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
	return resp.StatusCode, string(bytes.TrimSpace(b))
}

// assertRunning fails the test if a node exited without being asked to: an
// old node that met a command it does not know would stop loudly.
func assertRunning(t *testing.T, procs []*proc) {
	t.Helper()
	for _, p := range procs {
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v):\n%s", p.id, p.err, tail(p.logFile))
		default:
		}
	}
}

// The current build and a build with one more command kind (fsm.Note,
// -tags watchdog_nextproto) in one cluster, upgraded one node at a time
// under a heartbeat load: the new kind is refused while any server runs the
// old build, and committed everywhere once none does.
func TestRollingUpgradeToANewProtocolOneNodeAtATime(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and starts three node processes; skipped with -short")
	}
	dir := t.TempDir()
	oldBin := buildWatchdog(t, dir, "watchdog-old", "")
	nextBin := buildWatchdog(t, dir, "watchdog-next", "watchdog_nextproto")
	config := filepath.Join(dir, "watchdog.yaml")
	if err := os.WriteFile(config, []byte("defaults: {timeout: 1h}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	procs := startProcCluster(t, dir, oldBin, config)
	leader := procLeader(t, procs)
	if err := post("http://" + leader.httpAddr + "/v1/heartbeat/noted"); err != nil {
		t.Fatal(err)
	}
	load := startLoadOn(func() []string { return []string{procs[0].httpAddr, procs[1].httpAddr, procs[2].httpAddr} },
		3, 20*time.Millisecond)

	old, leader := upgradeAllButOne(t, procs, leader, oldBin, nextBin)
	refusedWhileOld(t, procs, leader, old)

	// The last one: refused while it is down too (it may come back old).
	old.kill(syscall.SIGTERM)
	if err := old.wait(t); err != nil {
		t.Fatalf("%s exited with %v after SIGTERM", old.id, err)
	}
	code, body := postNote(leader, "noted", "too soon")
	if code != http.StatusConflict {
		t.Fatalf("note with %s down: %d %s", old.id, code, body)
	}
	t.Logf("note with %s down refused: %d %s", old.id, code, body)
	old.bin = nextBin
	startProc(t, old)
	waitForStatusOK(t, old)

	acceptedEverywhere(t, procs, leader)
	oldNodeIsNotAdded(t, dir, oldBin, config, leader)
	load.stop(t)
	assertRunning(t, procs)
	for _, p := range procs {
		if b, _ := os.ReadFile(p.logFile); bytes.Contains(b, []byte("panic")) {
			t.Fatalf("%s panicked:\n%s", p.id, tail(p.logFile))
		}
	}
}

// upgradeAllButOne upgrades a follower, then the leader, and returns the
// node left on the old build and the leader, which it makes a new node.
func upgradeAllButOne(t *testing.T, procs []*proc, leader *proc, oldBin, nextBin string) (old, newLeader *proc) {
	t.Helper()
	first := otherThan(procs, leader)
	restartOn(t, first, nextBin)
	// The old leader has no such route (404); were a new node to lead by
	// now, it would refuse (409). Never committed.
	if code, body := postNote(first, "noted", "early"); code != http.StatusNotFound && code != http.StatusConflict {
		t.Fatalf("note with two old nodes: %d %s", code, body)
	}
	// Then the leader (or, if leadership has moved to the new node, the
	// other old one): a leader hands over, and comes back on the new build.
	second := procLeader(t, procs)
	if second == first {
		second = otherThan(procs, first)
	}
	restartOn(t, second, nextBin)
	old = otherThan(procs, first, second)
	// A new node must lead while the old one runs: if the old one leads, a
	// plain restart moves leadership, as only the new ones can be elected
	// while it is down.
	if newLeader = procLeader(t, procs); newLeader == old {
		restartOn(t, old, oldBin)
		newLeader = procLeader(t, procs)
	}
	// Gossip takes a moment to carry a restarted node's new protocol: until
	// it has, the leader refuses on that node's account, rightly but not
	// for the reason under test.
	waitForProtocols(t, newLeader, map[string]int{first.id: nextProto, second.id: nextProto, old.id: fsm.ProtocolVersion})
	return old, newLeader
}

// refusedWhileOld checks that the note is refused while old runs the old
// build, and that old keeps running.
func refusedWhileOld(t *testing.T, procs []*proc, leader, old *proc) {
	t.Helper()
	// Through the leader, and through the other new node by forwarding.
	for _, via := range []*proc{leader, otherThan(procs, leader, old)} {
		code, body := postNote(via, "noted", "too soon")
		if code != http.StatusConflict || !strings.Contains(body, fmt.Sprintf("server %s advertises protocol %d", old.id, fsm.ProtocolVersion)) {
			t.Fatalf("note via %s with %s on the old build: %d %s", via.id, old.id, code, body)
		}
		t.Logf("note via %s refused: %d %s", via.id, code, body)
	}
	if code, body := postNote(old, "noted", "too soon"); code != http.StatusNotFound {
		t.Fatalf("note via the old build: %d %s", code, body)
	}
	assertRunning(t, procs)
}

// acceptedEverywhere waits until the leader accepts the note, then checks
// it is on every replica (and no refused one is), and that watchdog members
// shows the new protocol (PROTO, last) for every voter.
func acceptedEverywhere(t *testing.T, procs []*proc, leader *proc) {
	t.Helper()
	waitFor(t, 30*time.Second, "the note to be accepted", func() bool {
		code, body := postNote(leader, "noted", "upgraded")
		if code != http.StatusOK && code != http.StatusConflict {
			t.Fatalf("note after the upgrade: %d %s", code, body)
		}
		return code == http.StatusOK
	})
	for _, p := range procs {
		waitFor(t, 20*time.Second, "the note on "+p.id, func() bool { return hasNote(t, p, "noted", "upgraded") })
		if hasNote(t, p, "noted", "too soon") || hasNote(t, p, "noted", "early") {
			t.Fatalf("a refused note was committed on %s", p.id)
		}
	}
	out := mustCLI(t, cli.ExitOK, "members", "-addr", leader.httpAddr)
	// A header, a line a node, and the committed configuration's line.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// The PROTO column by its header (CONFIG follows it), and the node
	// rows only (a line on the committed configuration follows them).
	proto, rows := slices.Index(strings.Fields(lines[0]), "PROTO"), 0
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if strings.HasPrefix(line, "committed configuration") {
			continue
		}
		if rows++; proto < 0 || len(f) <= proto || f[proto] != strconv.Itoa(nextProto) || f[3] != "voter" {
			t.Fatalf("watchdog members after the upgrade:\n%s", out)
		}
	}
	if rows != 3 {
		t.Fatalf("watchdog members after the upgrade shows %d nodes:\n%s", rows, out)
	}
	t.Logf("watchdog members after the upgrade:\n%s", out)
}

// otherThan is the first of procs that is none of not.
func otherThan(procs []*proc, not ...*proc) *proc {
	for _, p := range procs {
		if !slices.Contains(not, p) {
			return p
		}
	}
	return nil
}

// hasNote reports whether p's own replica holds the note in service's history.
func hasNote(t *testing.T, p *proc, service, text string) bool {
	t.Helper()
	var h struct {
		Events []struct {
			Event string `json:"event"`
			Note  string `json:"note"`
		} `json:"events"`
	}
	if getJSON(t, "http://"+p.httpAddr+"/v1/services/"+service+"/events", &h) != http.StatusOK {
		return false
	}
	for _, e := range h.Events {
		if e.Event == "note" && e.Note == text {
			return true
		}
	}
	return false
}

// waitForProtocols waits until via's /v1/cluster shows each node alive with
// the protocol want gives.
func waitForProtocols(t *testing.T, via *proc, want map[string]int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%s to see the protocols %v", via.id, want), func() bool {
		var cl apiCluster // fresh each time: decoding into an old value keeps omitted fields
		if getJSON(t, "http://"+via.httpAddr+"/v1/cluster", &cl) != http.StatusOK {
			return false
		}
		seen := 0
		for _, n := range cl.Nodes {
			if p, ok := want[n.ID]; ok && n.Alive && n.Protocol == p {
				seen++
			}
		}
		return seen == len(want)
	})
}

// oldNodeIsNotAdded starts a fourth node on the old build once every server
// runs the new one (and the log holds a note, which the old build cannot
// read): the leader sees it in gossip, says why it does not add it, and
// it never enters the Raft configuration, so it never meets the note.
func oldNodeIsNotAdded(t *testing.T, dir, oldBin, config string, leader *proc) {
	t.Helper()
	addrs := freeAddrs(t, 3)
	late := &proc{id: "n4", bin: oldBin, dataDir: filepath.Join(dir, "n4"), logFile: filepath.Join(dir, "n4.log"),
		httpAddr: addrs[0], raft: addrs[1], gossipAddr: addrs[2], args: []string{"-config", config, "-join", leader.gossipAddr}}
	startProc(t, late)
	defer func() {
		late.kill(syscall.SIGTERM)
		_ = late.wait(t)
	}()
	waitFor(t, 60*time.Second, "the leader to refuse the old n4", func() bool {
		b, _ := os.ReadFile(leader.logFile)
		return bytes.Contains(b, []byte("not adding a node on an older build")) && bytes.Contains(b, []byte("id=n4"))
	})
	var cl apiCluster
	if getJSON(t, "http://"+leader.httpAddr+"/v1/cluster", &cl) != http.StatusOK {
		t.Fatal("GET /v1/cluster on the leader failed")
	}
	for _, n := range cl.Nodes {
		if n.ID == "n4" && n.Suffrage != "none" {
			t.Fatalf("the old n4 is a %s of the Raft configuration", n.Suffrage)
		}
	}
	assertRunning(t, []*proc{late})
	t.Logf("old n4 kept out:\n%s", tail(leader.logFile))
}
