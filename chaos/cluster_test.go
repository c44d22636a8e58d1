package chaos

// The three watchdog processes, each in its namespace, and what the test
// asks of them over HTTP.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	httpPort   = 8080
	raftPort   = 8300
	gossipPort = 8301
	proxyBase  = 8400 // + index of the node the connection comes from
)

type node struct {
	id, ns, ip string
	idx        int
	dir        string // config, action script and logs
	dataDir    string
	logFile    string
	actionLog  string
	config     string
	args       []string

	mu    sync.Mutex
	cmd   *exec.Cmd
	pid   int
	exit  chan struct{} // closed when the process has been reaped
	state string        // "running", "stopped" (SIGSTOP), "dead"
}

func (n *node) url(path string) string {
	return fmt.Sprintf("http://%s%s", net.JoinHostPort(n.ip, fmt.Sprint(httpPort)), path)
}

// cluster is the lab, its nodes and their delay proxies.
type cluster struct {
	t       *testing.T
	lab     *netLab
	bin     string
	dir     string
	nodes   []*node
	proxies []*delayProxy
}

// nodeEnv is this process's environment without WATCHDOG_* settings, so
// that a developer's WATCHDOG_JOIN cannot leak into the lab.
func nodeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WATCHDOG_") {
			env = append(env, kv)
		}
	}
	return env
}

// actionScript appends one line per run to the node's action log:
// "EVENT SERVICE INCIDENT NODE UNIX_NANOS" (ParseActionLine reads it).
const actionScript = `#!/bin/sh
echo "$WATCHDOG_EVENT $WATCHDOG_SERVICE_ID $WATCHDOG_INCIDENT_ID %s $(date +%%s%%N)" >> %s
`

// writeNodeFiles writes node n's action script and config. Only the
// action's path differs between nodes; the replicated part (defaults and
// services) is the same everywhere.
func writeNodeFiles(n *node, services map[string]time.Duration) error {
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return err
	}
	script := filepath.Join(n.dir, "record.sh")
	if err := os.WriteFile(script, fmt.Appendf(nil, actionScript, n.id, shellQuote(n.actionLog)), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(script, 0o755); err != nil {
		return err
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	var b strings.Builder
	fmt.Fprintf(&b, "check_interval: 250ms\ndefaults:\n  timeout: 10s\n  actions: [record]\n")
	fmt.Fprintf(&b, "actions:\n  record:\n    exec: [%s]\n    timeout: 10s\nservices:\n", q(script))
	for _, id := range sortedKeys(services) {
		fmt.Fprintf(&b, "  %s:\n    timeout: %s\n    actions: [record]\n    on_recovered: [record]\n", id, services[id])
	}
	return os.WriteFile(n.config, []byte(b.String()), 0o644)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func newCluster(t *testing.T, lab *netLab, bin, dir string, services map[string]time.Duration) *cluster {
	c := &cluster{t: t, lab: lab, bin: bin, dir: dir}
	for i, ln := range lab.nodes {
		id := fmt.Sprintf("n%d", i+1)
		nd := filepath.Join(dir, id)
		n := &node{id: id, ns: ln.ns, ip: ln.ip, idx: i, dir: nd,
			dataDir: filepath.Join(nd, "data"), logFile: filepath.Join(nd, "watchdog.log"),
			actionLog: filepath.Join(nd, "actions.log"), config: filepath.Join(nd, "watchdog.yaml"), state: "dead"}
		if err := writeNodeFiles(n, services); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		var joins []string
		for _, o := range c.nodes {
			if o != n {
				joins = append(joins, net.JoinHostPort(o.ip, fmt.Sprint(gossipPort)))
			}
		}
		n.args = []string{"agent", "-node-id", n.id,
			"-http-addr", net.JoinHostPort(n.ip, fmt.Sprint(httpPort)),
			"-raft-addr", net.JoinHostPort(n.ip, fmt.Sprint(raftPort)),
			"-gossip-addr", net.JoinHostPort(n.ip, fmt.Sprint(gossipPort)),
			"-data-dir", n.dataDir, "-join", strings.Join(joins, ","),
			"-bootstrap-expect", fmt.Sprint(len(c.nodes)), "-config", n.config}
	}
	// Raft between every two nodes through a delay proxy (proxy_test.go),
	// set up before any node starts so that every connection takes it.
	// WATCHDOG_CHAOS_PROXY=0 leaves Raft direct (and the links undelayed).
	for _, to := range c.nodes {
		if os.Getenv("WATCHDOG_CHAOS_PROXY") == "0" {
			break
		}
		for _, from := range c.nodes {
			if from == to {
				continue
			}
			via := proxyBase + from.idx
			ln, err := listenIn(to.ns, net.JoinHostPort(to.ip, fmt.Sprint(via)))
			if err != nil {
				t.Fatalf("delay proxy in %s: %v", to.ns, err)
			}
			c.proxies = append(c.proxies, newDelayProxy(ln, net.JoinHostPort(to.ip, fmt.Sprint(raftPort))))
			if err := lab.redirect(from.idx, to.idx, raftPort, via); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Registered after the lab's cleanup, so it runs before it: processes
	// first, then the namespaces they ran in.
	t.Cleanup(c.cleanup)
	return c
}

func (c *cluster) setDelay(d time.Duration) {
	for _, p := range c.proxies {
		p.setDelay(d)
	}
}

func (c *cluster) cleanup() {
	for _, n := range c.nodes {
		n.mu.Lock()
		cmd, exit := n.cmd, n.exit
		n.mu.Unlock()
		if cmd == nil {
			continue
		}
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exit:
		case <-time.After(10 * time.Second):
			c.t.Errorf("%s (pid %d) still running 10s after SIGKILL", n.id, cmd.Process.Pid)
		}
	}
	for _, p := range c.proxies {
		p.close()
	}
}

// start runs the node in its namespace (`ip netns exec` execs in place, so
// the pid is the watchdog's), appending its output to its log.
func (c *cluster) start(n *node) {
	c.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		c.t.Fatalf("start %s: already running (pid %d)", n.id, n.pid)
	}
	logf, err := os.OpenFile(n.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== %s chaos: starting %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), c.bin, strings.Join(n.args, " "))
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.ns, c.bin}, n.args...)...)
	cmd.Env = nodeEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("start %s: %v", n.id, err)
	}
	exit := make(chan struct{})
	n.cmd, n.pid, n.exit, n.state = cmd, cmd.Process.Pid, exit, "running"
	go func() {
		err := cmd.Wait()
		logf.Close()
		n.mu.Lock()
		if n.cmd == cmd {
			n.cmd, n.state = nil, "dead"
		}
		n.mu.Unlock()
		_ = err
		close(exit)
	}()
}

// signal sends sig to the node and, for a fatal one, waits until it is gone.
func (c *cluster) signal(n *node, sig syscall.Signal) {
	c.t.Helper()
	n.mu.Lock()
	cmd, exit := n.cmd, n.exit
	n.mu.Unlock()
	if cmd == nil {
		c.t.Fatalf("signal %v to %s: not running", sig, n.id)
	}
	if err := syscall.Kill(cmd.Process.Pid, sig); err != nil {
		c.t.Fatalf("signal %v to %s: %v", sig, n.id, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.setState("stopped")
		return
	case syscall.SIGCONT:
		n.setState("running")
		return
	}
	wait := 15 * time.Second
	select {
	case <-exit:
	case <-time.After(wait):
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-exit
		c.t.Errorf("%s did not exit within %v of %v; killed it", n.id, wait, sig)
	}
}

func (n *node) setState(s string) {
	n.mu.Lock()
	n.state = s
	n.mu.Unlock()
}

func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil && n.state == "running"
}

// ---- HTTP -----------------------------------------------------------------

// probe is for the test's own questions: short timeouts, no pooled
// connection that could outlive a killed node.
var probe = &http.Client{
	Timeout:   700 * time.Millisecond,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
}

func getJSON(u string, v any) error {
	resp, err := probe.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}

type clusterView struct {
	Leader string `json:"leader"`
	Nodes  []struct {
		ID    string `json:"id"`
		Voter bool   `json:"voter"`
		Alive bool   `json:"alive"`
	} `json:"nodes"`
}

// leaderSeenBy is the leader node n reports, "" when none or unreachable.
func (c *cluster) leaderSeenBy(n *node) string {
	var v clusterView
	if err := getJSON(n.url("/v1/cluster"), &v); err != nil {
		return ""
	}
	return v.Leader
}

func (c *cluster) byID(id string) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// leader is the node every running node names as leader, and that names
// itself, or nil.
func (c *cluster) leader(among []*node) *node {
	seen := ""
	for _, n := range among {
		l := c.leaderSeenBy(n)
		if l == "" || (seen != "" && l != seen) {
			return nil
		}
		seen = l
	}
	ln := c.byID(seen)
	if ln == nil || c.leaderSeenBy(ln) != seen {
		return nil
	}
	return ln
}

// waitNewLeader waits until a node among names a leader other than old,
// that node agreeing, and returns it with the time it took since from.
func (c *cluster) waitNewLeader(among []*node, old *node, from time.Time, within time.Duration) (*node, time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, n := range among {
			l := c.byID(c.leaderSeenBy(n))
			if l != nil && l != old && c.leaderSeenBy(l) == l.id {
				return l, time.Since(from)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no new leader among %v within %v (old %s)", ids(among), within, old.id)
	return nil, 0
}

func ids(ns []*node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.id)
	}
	return out
}

// healthy reports why the cluster is not fully back: every node ready,
// agreeing on one leader, with every node a voter.
func (c *cluster) healthy() error {
	leader := ""
	for _, n := range c.nodes {
		resp, err := probe.Get(n.url("/readyz"))
		if err != nil {
			return fmt.Errorf("%s: %w", n.id, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s not ready: %s", n.id, strings.TrimSpace(string(body)))
		}
		var v clusterView
		if err := getJSON(n.url("/v1/cluster"), &v); err != nil {
			return err
		}
		voters := 0
		for _, m := range v.Nodes {
			if m.Voter {
				voters++
			}
		}
		switch {
		case v.Leader == "":
			return fmt.Errorf("%s knows no leader", n.id)
		case leader != "" && v.Leader != leader:
			return fmt.Errorf("%s says the leader is %s, others %s", n.id, v.Leader, leader)
		case voters != len(c.nodes):
			return fmt.Errorf("%s sees %d voters", n.id, voters)
		}
		leader = v.Leader
	}
	return nil
}

func (c *cluster) waitHealthy(within time.Duration) {
	c.t.Helper()
	if err := c.healthyWithin(within); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) healthyWithin(within time.Duration) error {
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		if err = c.healthy(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cluster not healthy within %v: %w", within, err)
}

// waitStable waits until the cluster has been healthy for a whole stretch
// of hold: a node back from a wiped data dir looks whole at first, and is
// demoted until it catches up a moment later.
func (c *cluster) waitStable(within, hold time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	var since time.Time
	var err error
	for time.Now().Before(deadline) {
		if err = c.healthy(); err != nil {
			since = time.Time{}
		} else if since.IsZero() {
			since = time.Now()
		} else if time.Since(since) >= hold {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("cluster not healthy for %v in a row within %v: %v", hold, within, err)
}

// lastSeen reads every service's last_seen on node n.
func lastSeen(n *node) (map[string]time.Time, error) {
	var v struct {
		Services []struct {
			ID       string     `json:"id"`
			LastSeen *time.Time `json:"last_seen"`
		} `json:"services"`
	}
	if err := getJSON(n.url("/v1/services"), &v); err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, s := range v.Services {
		if s.LastSeen != nil {
			out[s.ID] = *s.LastSeen
		}
	}
	return out, nil
}

// readActions reads every node's action log.
func (c *cluster) readActions() ([]Exec, error) {
	var out []Exec
	for _, n := range c.nodes {
		b, err := os.ReadFile(n.actionLog)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for line := range strings.Lines(string(b)) {
			if strings.TrimSpace(line) == "" || !strings.HasSuffix(line, "\n") {
				continue // a line being written
			}
			e, err := ParseActionLine(line)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n.actionLog, err)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

func tail(path string, n int) string {
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

// ---- workload -------------------------------------------------------------

// workload beats services through random nodes, as clients behind a load
// balancer would: each round tries the nodes in a random order until one
// answers 200, and records that acknowledgement.
type workload struct {
	c      *cluster
	client *http.Client
	period time.Duration

	mu       sync.Mutex
	acks     []Ack
	fails    []Attempt
	failed   int // rounds in which no node acknowledged
	attempts int
	stopAt   map[string]time.Time
	stops    map[string]chan struct{}
	wg       sync.WaitGroup
	done     map[string]chan struct{}
	cancel   context.CancelFunc
}

const attemptTimeout = 1500 * time.Millisecond

func newWorkload(c *cluster) *workload {
	return &workload{c: c, period: 300 * time.Millisecond,
		client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64,
			DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}},
		stopAt: map[string]time.Time{}, stops: map[string]chan struct{}{}, done: map[string]chan struct{}{}}
}

func (w *workload) start(services []string) {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	for i, svc := range services {
		stop, done := make(chan struct{}), make(chan struct{})
		w.stops[svc], w.done[svc] = stop, done
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer close(done)
			// Spread the services over the period.
			select {
			case <-time.After(w.period * time.Duration(i) / time.Duration(len(services))):
			case <-ctx.Done():
				return
			}
			w.beat(ctx, svc, stop)
		}()
	}
}

// beat heartbeats svc until stopped; a stop takes effect only after an
// acknowledged round, so nothing is sent after the last acknowledgement.
func (w *workload) beat(ctx context.Context, svc string, stop <-chan struct{}) {
	for {
		if !w.round(ctx, svc) {
			if ctx.Err() != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		jitter := time.Duration(time.Now().UnixNano()%100-50) * time.Millisecond
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(w.period + jitter):
		}
		select {
		case <-stop:
			return
		default:
		}
	}
}

func (w *workload) round(ctx context.Context, svc string) bool {
	order := randPerm(len(w.c.nodes))
	for _, i := range order {
		n := w.c.nodes[i]
		sent := time.Now()
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		req, _ := http.NewRequestWithContext(actx, http.MethodPost, n.url("/v1/heartbeat/"+svc), nil)
		resp, err := w.client.Do(req)
		ok, result := false, ""
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			ok, result = resp.StatusCode == http.StatusOK, resp.Status
		} else {
			result = err.Error()
			if errors.Is(err, context.DeadlineExceeded) {
				result = "timeout"
			}
		}
		cancel()
		acked := time.Now()
		w.mu.Lock()
		w.attempts++
		if ok {
			w.acks = append(w.acks, Ack{Service: svc, Node: n.id, Sent: sent, Acked: acked})
		} else {
			w.fails = append(w.fails, Attempt{Service: svc, Node: n.id, Sent: sent, Done: acked, Result: result})
		}
		w.mu.Unlock()
		if ok {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
	}
	w.mu.Lock()
	w.failed++
	w.mu.Unlock()
	return false
}

// silence stops svc's heartbeats (after its current round succeeds).
func (w *workload) silence(svc string) {
	w.mu.Lock()
	w.stopAt[svc] = time.Now()
	w.mu.Unlock()
	close(w.stops[svc])
}

// waitSilent waits until svc's client has sent its last heartbeat.
func (w *workload) waitSilent(svc string, within time.Duration) bool {
	select {
	case <-w.done[svc]:
		return true
	case <-time.After(within):
		return false
	}
}

func (w *workload) stopAll() {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
}

// snapshot copies what has been recorded so far.
func (w *workload) snapshot() (acks []Ack, silenced map[string]time.Time, failed, attempts int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	silenced = map[string]time.Time{}
	for k, v := range w.stopAt {
		silenced[k] = v
	}
	return append([]Ack(nil), w.acks...), silenced, w.failed, w.attempts
}

func (w *workload) failures() []Attempt {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.fails)
}

func randPerm(n int) []int { return rand.Perm(n) }

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
