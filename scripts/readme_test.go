//go:build unix

package scripts_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReadmeTour runs the shell commands of the README's five-minute tour,
// and the PUT example of docs/http-api.md, as a reader would, against a cluster of its own
// (make cluster, on a free WATCHDOG_PORT_BASE and its own WATCHDOG_DATA),
// and checks what they print against the README's samples: the keys of
// every sample object, the statuses the comments promise, the log line the
// prose promises, and that the kill command finds the leader's pid file.
func TestReadmeTour(t *testing.T) {
	withHAProxy := checkPrerequisites(t)
	if _, err := exec.LookPath("make"); err != nil {
		t.Skipf("make not found: %v", err)
	}
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	tour := shellBlocks(t, section(t, string(readme), "## A five-minute tour"))
	if len(tour) != 5 {
		t.Fatalf("the tour has %d sh blocks; this test knows 5: update it with the README", len(tour))
	}
	httpAPI, err := os.ReadFile(filepath.Join(root, "docs", "http-api.md"))
	if err != nil {
		t.Fatal(err)
	}
	put := shellBlocks(t, section(t, string(httpAPI), "## Managing services"))[0]
	r := &tourRun{t: t, root: root, tp: freeTopology(t), haproxy: withHAProxy}
	r.dataDir = filepath.Join(t.TempDir(), "cluster")
	r.env = scriptEnv(r.dataDir, "", r.tp.base)
	t.Cleanup(r.cleanup)

	// Start, and a heartbeat through every entry point.
	for _, v := range r.run(tour[0]) {
		if v["status"] != "committed" {
			t.Fatalf("heartbeat answered %v", v)
		}
	}
	// Reads, as the samples show them.
	out := r.run(tour[1])
	svc, partial := sample(t, tour[1], 0)
	wantKeys(t, "the service", out[0], svc, partial)
	if out[1]["leader"] == "" || len(out[1]["nodes"].([]any)) != 3 {
		t.Fatalf("cluster: %v", out[1])
	}
	// Changes need the generated token, which the tour finds.
	if code, _ := httpStatus(t, "POST", r.tp.nodes[1].url+"/v1/services/backup-job/pause"); code != http.StatusUnauthorized {
		t.Fatalf("pause without the token: %d, want 401 as the tour says", code)
	}
	out = r.run(tour[2])
	if out[0]["status"] != "paused" || out[1]["status"] != "up" {
		t.Fatalf("pause and resume with the token: %v", out)
	}
	paused, partial := sample(t, tour[2], 0)
	wantKeys(t, "the paused service", out[0], paused, partial)
	// Silence: down after the timeout, in the leader's log; then up again.
	waitFor(t, 30*time.Second, "backup-job down after its silence", func() (bool, string) {
		var sv serviceView
		_, err := getJSON(r.tp.nodes[2].url+"/v1/services/backup-job", &sv)
		return err == nil && sv.Status == "down", sv.Status
	})
	logged := false
	for _, n := range r.tp.nodes {
		for line := range strings.SplitSeq(readFileString(filepath.Join(r.dataDir, n.id, "watchdog.log")), "\n") {
			logged = logged || strings.Contains(line, `msg="service down"`) && strings.Contains(line, "service=backup-job")
		}
	}
	if !logged {
		t.Fatal("no node's log has the log action's line, where the tour says it is")
	}
	out = r.run(tour[3])
	if out[0]["status"] != "down" || out[1]["status"] != "committed" {
		t.Fatalf("down, heartbeat: %v", out)
	}
	// n3 answers from its replica, which may lag the commit by a round trip.
	waitFor(t, 5*time.Second, "n3's replica to show the recovery", func() (bool, string) {
		if out[2]["status"] == "up" {
			return true, ""
		}
		var v map[string]any
		_, err := getJSON(r.tp.nodes[2].url+"/v1/services/backup-job", &v)
		if err == nil {
			out[2] = v
		}
		return false, fmt.Sprint(out[2]["status"])
	})
	resolved, partial := sample(t, tour[3], 0)
	wantKeys(t, "the recovered service", out[2], resolved, partial)
	incidents, _ := out[2]["incidents"].([]any)
	incident, _ := out[2]["incident"].(map[string]any)
	if len(incidents) == 0 || incident == nil || incident["resolved"] == nil {
		t.Fatalf("no resolved incident after the recovery: %v", out[2])
	}
	for i, got := range []map[string]any{incident, incidents[0].(map[string]any)} {
		want := resolved["incident"].(map[string]any)
		if i == 1 {
			want = resolved["incidents"].([]any)[0].(map[string]any)
		}
		wantKeys(t, "an incident", got, want, false)
		wantKeys(t, "an action run", got["actions"].([]any)[0].(map[string]any), want["actions"].([]any)[0].(map[string]any), false)
	}
	// The PUT example, with the token as it says.
	out = r.run(put)
	if out[0]["timeout"] != "30s" || out[0]["description"] != "nightly backup" || out[0]["source"] != "api" {
		t.Fatalf("the PUT example: %v", out)
	}
	// Kill the leader (its pid file where the tour looks), restart, stop.
	leader := ""
	if _, err := getJSON(r.tp.nodes[0].url+"/v1/cluster", &struct {
		Leader *string `json:"leader"`
	}{&leader}); err != nil {
		t.Fatal(err)
	}
	r.run(tour[4])
	if !regexp.MustCompile(`backup-job: heartbeat committed \(via http://127\.0\.0\.1:\d+\)`).MatchString(r.lastOut) {
		t.Fatalf("the ping after the kill did not commit:\n%s", r.lastOut)
	}
	if !strings.Contains(r.lastOut, "already running") || !strings.Contains(r.lastOut, "started "+leader) ||
		!strings.Contains(r.lastOut, "watchdog cluster is up") || !strings.Contains(r.lastOut, "stopped") {
		t.Fatalf("kill the leader (%s), make cluster, make cluster-down printed:\n%s", leader, r.lastOut)
	}
}

// tourRun is the cluster the tour runs against.
type tourRun struct {
	t       *testing.T
	root    string
	tp      topology
	haproxy bool
	dataDir string
	env     []string
	lastOut string
}

// run runs one block with bash in the repository, as a reader pastes it,
// with the cluster's ports, and returns the JSON objects it printed, one a
// line (the other lines are make's and the scripts').
func (r *tourRun) run(block string) []map[string]any {
	t := r.t
	t.Helper()
	script := r.localise(block)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = r.root, r.env
	b, err := cmd.CombinedOutput()
	r.lastOut = string(b)
	t.Logf("$ %s\n%s", strings.ReplaceAll(strings.TrimSpace(script), "\n", "\n$ "), b)
	if err != nil {
		t.Fatalf("the block failed: %v", err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(r.lastOut))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "{") {
			var v map[string]any
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			out = append(out, v)
		}
	}
	return out
}

var readmePort = regexp.MustCompile(`127\.0\.0\.1:808([0-3])\b`)

// localise moves a block to this cluster's ports, and drops the commands
// for haproxy when it is not installed, as the tour says to.
func (r *tourRun) localise(block string) string {
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		if !r.haproxy && strings.Contains(l, "127.0.0.1:8080") && !strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		lines = append(lines, readmePort.ReplaceAllStringFunc(l, func(m string) string {
			return fmt.Sprintf("%s:%d", host, r.tp.base+int(m[len(m)-1]-'0'))
		}))
	}
	return strings.Join(lines, "\n")
}

func (r *tourRun) cleanup() {
	cmd := exec.Command("bash", filepath.Join(r.root, "scripts", "cluster-down.sh"))
	cmd.Env = r.env
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Errorf("cluster-down.sh: %v\n%s", err, out)
	}
}

// section is a document from heading to the next heading of its level.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading)
	if i < 0 {
		t.Fatalf("the document has no %q", heading)
	}
	rest := doc[i+1+len(heading):]
	level := heading[:strings.Index(heading, " ")+1]
	if j := strings.Index(rest, "\n"+level); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// shellBlocks are the ```sh blocks of text.
func shellBlocks(t *testing.T, text string) []string {
	t.Helper()
	var blocks []string
	for {
		i := strings.Index(text, "```sh\n")
		if i < 0 {
			return blocks
		}
		text = text[i+len("```sh\n"):]
		j := strings.Index(text, "```")
		if j < 0 {
			t.Fatal("an unterminated ```sh block")
		}
		blocks = append(blocks, text[:j])
		text = text[j:]
	}
}

// sample is the nth JSON object the README shows in block, in comment
// lines that begin with "# {". One that ends in ",...}" (and perhaps a
// remark) shows only some keys: partial.
func sample(t *testing.T, block string, nth int) (v map[string]any, partial bool) {
	t.Helper()
	var samples []string
	lines := strings.Split(block, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "# {") {
			continue
		}
		var b strings.Builder
		for ; i < len(lines) && strings.HasPrefix(lines[i], "#"); i++ {
			b.WriteString(strings.TrimSpace(strings.TrimPrefix(lines[i], "#")))
		}
		samples = append(samples, b.String())
	}
	if nth >= len(samples) {
		t.Fatalf("no sample %d in\n%s", nth, block)
	}
	s := samples[nth]
	if k := strings.LastIndex(s, ",...}"); k >= 0 {
		s, partial = s[:k]+"}", true
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("the README's sample %s: %v", s, err)
	}
	return v, partial
}

// wantKeys fails unless got has the keys the sample shows, and no others
// unless the sample is partial.
func wantKeys(t *testing.T, what string, got, sample map[string]any, partial bool) {
	t.Helper()
	g, s := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(sample))
	missing := slices.DeleteFunc(slices.Clone(s), func(k string) bool { return slices.Contains(g, k) })
	if len(missing) > 0 || (!partial && !slices.Equal(g, s)) {
		t.Fatalf("%s: the README shows keys %v, the API answers %v", what, s, g)
	}
}

// httpStatus is the status of one request without a token.
func httpStatus(t *testing.T, method, url string) (int, error) {
	t.Helper()
	return status(method, url)
}
