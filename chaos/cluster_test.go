package chaos

// The three watchdog processes, each in its namespace, and what the test
// asks of them over HTTP.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	clockFile  string        // the wall clock's offset (clock_test.go)
	clock      time.Duration // the offset written there
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
// services) is the same everywhere. defaults is the timeout of services
// first seen through a heartbeat (the random schedules' silent ones).
func writeNodeFiles(n *node, services map[string]time.Duration, defaults time.Duration) error {
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
	fmt.Fprintf(&b, "check_interval: 250ms\ndefaults:\n  timeout: %s\n  actions: [record]\n  on_recovered: [record]\n", defaults)
	fmt.Fprintf(&b, "actions:\n  record:\n    exec: [%s]\n    timeout: 10s\nservices:\n", q(script))
	for _, id := range sortedKeys(services) {
		fmt.Fprintf(&b, "  %s:\n    timeout: %s\n    actions: [record]\n    on_recovered: [record]\n", id, services[id])
	}
	return os.WriteFile(n.config, []byte(b.String()), 0o644)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func newCluster(t *testing.T, lab *netLab, bin, dir string, services map[string]time.Duration, defaults time.Duration) *cluster {
	c := &cluster{t: t, lab: lab, bin: bin, dir: dir}
	for i, ln := range lab.nodes {
		id := fmt.Sprintf("n%d", i+1)
		nd := filepath.Join(dir, id)
		n := &node{id: id, ns: ln.ns, ip: ln.ip, idx: i, dir: nd,
			dataDir: filepath.Join(nd, "data"), logFile: filepath.Join(nd, "watchdog.log"),
			actionLog: filepath.Join(nd, "actions.log"), config: filepath.Join(nd, "watchdog.yaml"),
			clockFile: filepath.Join(nd, "clock-offset"), state: "dead"}
		if err := writeNodeFiles(n, services, defaults); err != nil {
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

func (c *cluster) setJitter(d time.Duration) {
	for _, p := range c.proxies {
		p.setJitter(d)
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
	// The test build (buildBinary) adds this offset to the node's wall
	// clock; the clock scenarios rewrite it to step that clock.
	cmd.Env = append(nodeEnv(), "WATCHDOG_TEST_CLOCK_FILE="+n.clockFile)
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
