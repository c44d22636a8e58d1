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
	"strings"
	"syscall"
	"testing"
	"time"
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

// startProcCluster starts three nodes running bin that bootstrap together,
// every one joining the others, as scripts/cluster-up.sh does.
func startProcCluster(t *testing.T, dir, bin, config string) []*proc {
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
		startProc(t, p)
	}
	return procs
}

// restartOn stops p with SIGTERM, as the README's upgrade procedure does,
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
		out, errOut, code = cli(t, nil, runStatus, "-addr", p.httpAddr)
		return code == exitOK
	})
	t.Logf("%s back; watchdog status:\n%s%s", p.id, out, errOut)
}

// postNote asks a node for the watchdog_nextproto build's Note command.
func postNote(p *proc, service, text string) (int, string) {
	body, _ := json.Marshal(map[string]string{"text": text})
	c := http.Client{Timeout: 20 * time.Second}
	resp, err := c.Post("http://"+p.httpAddr+"/v1/services/"+service+"/note", "application/json", bytes.NewReader(body))
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

	// A follower first. The note goes to the old leader, which has no such route.
	first := procs[0]
	if first == leader {
		first = procs[1]
	}
	restartOn(t, first, nextBin)
	if code, body := postNote(first, "noted", "early"); code != http.StatusNotFound {
		t.Fatalf("note with an old leader: %d %s", code, body)
	}

	// Then the leader: it hands over, and comes back on the new build.
	leader = procLeader(t, procs)
	second := leader
	if second == first {
		second = procs[2]
		if second == leader || second == first {
			second = procs[1]
		}
	}
	restartOn(t, second, nextBin)
	var old *proc
	for _, p := range procs {
		if p != first && p != second {
			old = p
		}
	}
	// A new node must lead while the old one runs: if the old one leads, a
	// plain restart moves leadership, as only the new ones can be elected
	// while it is down.
	if leader = procLeader(t, procs); leader == old {
		restartOn(t, old, oldBin)
		leader = procLeader(t, procs)
	}
	for _, via := range []*proc{leader, first, second} {
		code, body := postNote(via, "noted", "too soon")
		if code != http.StatusConflict || !strings.Contains(body, "server "+old.id+" advertises protocol 1") {
			t.Fatalf("note via %s with %s on the old build: %d %s", via.id, old.id, code, body)
		}
		t.Logf("note via %s refused: %d %s", via.id, code, body)
	}
	assertRunning(t, procs)

	// The last one: refused while it is down too (it may come back old).
	old.kill(syscall.SIGTERM)
	if err := old.wait(t); err != nil {
		t.Fatalf("%s exited with %v after SIGTERM", old.id, err)
	}
	if code, body := postNote(leader, "noted", "too soon"); code != http.StatusConflict {
		t.Fatalf("note with %s down: %d %s", old.id, code, body)
	}
	old.bin = nextBin
	startProc(t, old)
	waitForStatusOK(t, old)

	// Accepted once gossip shows every server on the new protocol.
	var code int
	var body string
	waitFor(t, 30*time.Second, "the note to be accepted", func() bool {
		code, body = postNote(leader, "noted", "upgraded")
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
	var cl apiCluster
	if getJSON(t, "http://"+leader.httpAddr+"/v1/cluster", &cl) != http.StatusOK {
		t.Fatal("no /v1/cluster")
	}
	for _, n := range cl.Nodes {
		if n.Protocol != 2 || !n.Voter {
			t.Fatalf("after the upgrade, %s: protocol %d, voter %v", n.ID, n.Protocol, n.Voter)
		}
	}
	load.stop(t)
	assertRunning(t, procs)
	for _, p := range procs {
		if b, _ := os.ReadFile(p.logFile); bytes.Contains(b, []byte("panic")) {
			t.Fatalf("%s panicked:\n%s", p.id, tail(p.logFile))
		}
	}
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
