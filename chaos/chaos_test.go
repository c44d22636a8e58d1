package chaos

// TestChaos: the fault-injection suite of issue 6 on real processes. Three
// watchdog nodes run in their own network namespaces (netns_test.go); a
// workload beats services through random nodes throughout; each scenario
// injects its faults, heals, and the history checker (history_test.go)
// judges everything recorded so far. Run it with `make chaos`; it needs
// root, and is skipped unless WATCHDOG_CHAOS is set, so that `go test ./...`
// stays fast.
//
// Substitutes, as the kernel here has no sch_netem: loss is iptables'
// statistic match (each packet between two nodes dropped with probability
// 0.05, per direction); delay is a userspace proxy on the Raft connections
// (proxy_test.go), so gossip and the forwarding of heartbeats between nodes
// are not delayed.

import (
	"encoding/json"
	"fmt"
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
	steadyTimeout = 2 * time.Second // services that beat throughout
	silentTimeout = 3 * time.Second // services that go silent in a scenario
	steadyCount   = 6
	silentPerRun  = 3
)

type scenario struct {
	name string
	// slack is added to the rules' slack for this scenario's silent
	// services. (A new leader's grace needs none: the checker counts the
	// timeout from the last takeover it saw.)
	slack time.Duration
	run   func(s *step)
}

var scenarios = []scenario{
	{name: "leader-isolated", run: leaderIsolated},
	{name: "follower-isolated", run: followerIsolated},
	{name: "leader-sigstop", run: leaderStopped},
	{name: "kill-leader-then-follower", run: killLeaderThenFollower},
	{name: "rolling-restart", run: rollingRestart},
	{name: "wipe-data-dir", run: wipeDataDir},
	{name: "lossy-slow-links", slack: 2 * time.Second, run: lossySlowLinks},
}

func silentName(sc string, i int) string { return fmt.Sprintf("%s-q%d", sc, i+1) }

func TestChaos(t *testing.T) {
	if os.Getenv("WATCHDOG_CHAOS") == "" {
		t.Skip("fault-injection suite on real processes: run it with `make chaos` (WATCHDOG_CHAOS=1, as root)")
	}
	if err := labPrerequisites(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the chaos suite cannot run here: %v", err)
		}
		t.Skipf("the chaos suite cannot run here: %v", err)
	}
	dir, err := os.MkdirTemp("", "watchdog-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("WATCHDOG_CHAOS_KEEP") != "" {
			t.Logf("logs, data and action logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	bin := buildBinary(t, dir)

	services := map[string]time.Duration{}
	var steady []string
	for i := range steadyCount {
		id := fmt.Sprintf("steady-%d", i+1)
		services[id] = steadyTimeout
		steady = append(steady, id)
	}
	for _, sc := range scenarios {
		for i := range silentPerRun {
			services[silentName(sc.name, i)] = silentTimeout
		}
	}

	lab := newLab(t, 3)
	c := newCluster(t, lab, bin, dir, services)
	r := &runner{t: t, c: c, services: services, start: time.Now(), seen: map[string]bool{}}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("----- %s: end of %s -----\n%s", n.id, n.logFile, tail(n.logFile, 60))
			}
		}
	})
	for _, n := range c.nodes {
		c.start(n)
	}
	stopWatching := make(chan struct{})
	watching := make(chan struct{})
	go func() { defer close(watching); r.watchTakeovers(stopWatching) }()
	t.Cleanup(func() { close(stopWatching); <-watching })
	c.waitHealthy(60 * time.Second)
	t.Logf("cluster up in %v: leader %s, nodes %s", time.Since(r.start).Round(time.Millisecond),
		c.leader(c.nodes).id, strings.Join(ids(c.nodes), " "))
	// Heartbeats from now on: the configured services are watched from the
	// first leader's takeover.
	r.wl = newWorkload(c)
	r.wl.start(sortedKeys(services))
	t.Cleanup(r.wl.stopAll)
	// Whole, and staying so: the leader's reconciliation (every 5 s) must
	// not take a voter away from a cluster that has just formed.
	c.waitStable(30*time.Second, 6*time.Second)

	for _, sc := range scenarios {
		if !t.Run(sc.name, func(t *testing.T) { r.scenario(t, sc) }) {
			if err := c.healthyWithin(30 * time.Second); err != nil {
				t.Fatalf("after %s: %v: not running the rest", sc.name, err)
			}
		}
	}
	r.wl.stopAll()
	r.final(t)
	r.dump(t, filepath.Join(dir, "history.json"))
}

// dump writes the whole history as JSON, for a look after a failure.
func (r *runner) dump(t *testing.T, path string) {
	h, err := r.history()
	if err == nil {
		var b []byte
		if b, err = json.MarshalIndent(h, "", " "); err == nil {
			err = os.WriteFile(path, b, 0o644)
		}
	}
	if err != nil {
		t.Errorf("writing the history: %v", err)
	}
}

// buildBinary builds the watchdog, statically (the nodes run it through
// `ip netns exec`), into the run's directory, or takes WATCHDOG_CHAOS_BIN.
func buildBinary(t *testing.T, dir string) string {
	if b := os.Getenv("WATCHDOG_CHAOS_BIN"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	out := filepath.Join(dir, "watchdog")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/watchdog")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/watchdog: %v\n%s", err, b)
	}
	t.Logf("built %s in %v", out, time.Since(start).Round(time.Millisecond))
	return out
}

// runner holds what the scenarios share: the cluster, the workload, the
// faults injected so far, and the violations already reported.
type runner struct {
	t        *testing.T
	c        *cluster
	wl       *workload
	services map[string]time.Duration
	start    time.Time

	mu        sync.Mutex
	faults    []Fault
	takeovers []Takeover
	slack     map[string]time.Duration
	seen      map[string]bool // violations reported already
	rows      []row
}

// row is one scenario's line of the summary.
type row struct {
	name          string
	acked, failed int
	// expected: the scenario's silent services, each owed one down
	// action; detected: those that got it; runs: how many times those
	// actions ran (more than detected when one ran twice).
	expected, detected, runs int
	worstDetection           time.Duration // after the timeout, of the detected ones
	// otherDown, otherRecovered: actions that ran during the scenario for
	// services still beating (a gap in their acks made them legitimate).
	otherDown, otherRecovered int
	violations                int
	newLeader                 []time.Duration
	takeovers                 []string
	took                      time.Duration
}

func (r *runner) addFault(f Fault) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, f)
	return len(r.faults) - 1
}

func (r *runner) endFault(i int) {
	r.mu.Lock()
	r.faults[i].To = time.Now()
	r.mu.Unlock()
}

func (r *runner) history() (*History, error) {
	acks, silenced, _, _ := r.wl.snapshot()
	execs, err := r.c.readActions()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	faults := slices.Clone(r.faults)
	for i := range faults {
		if faults[i].To.IsZero() {
			faults[i].To = time.Now().Add(time.Hour) // still going on
		}
	}
	slack := map[string]time.Duration{}
	for k, v := range r.slack {
		slack[k] = v
	}
	return &History{Start: r.start, Timeout: r.services, Acks: acks, Execs: execs,
		Silenced: silenced, Slack: slack, Faults: faults, Takeovers: slices.Clone(r.takeovers),
		Failed: r.wl.failures()}, nil
}

// step is one scenario as it runs.
type step struct {
	t       *testing.T
	r       *runner
	c       *cluster
	sc      scenario
	silent  []string
	next    int
	row     *row
	stopped chan struct{}
}

func (s *step) sleep(d time.Duration) { time.Sleep(d) }

// silence makes the scenario's next silent service go quiet now.
func (s *step) silence() {
	if s.next >= len(s.silent) {
		s.t.Fatalf("scenario %s silences more than %d services", s.sc.name, len(s.silent))
	}
	svc := s.silent[s.next]
	s.next++
	s.r.wl.silence(svc)
	s.t.Logf("%s: %s goes silent", ms(time.Now()), svc)
}

func (s *step) leader() *node {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var up []*node
		for _, n := range s.c.nodes {
			if n.running() {
				up = append(up, n)
			}
		}
		if l := s.c.leader(up); l != nil {
			return l
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatal("no leader agreed on within 20s")
	return nil
}

func (s *step) others(n ...*node) []*node {
	var out []*node
	for _, o := range s.c.nodes {
		if !slices.Contains(n, o) {
			out = append(out, o)
		}
	}
	return out
}

// newLeader waits for a leader among other than old and notes how long it
// took from the fault at from.
func (s *step) newLeader(among []*node, old *node, from time.Time) *node {
	s.t.Helper()
	l, took := s.c.waitNewLeader(among, old, from, 30*time.Second)
	s.row.newLeader = append(s.row.newLeader, took)
	s.t.Logf("%s: new leader %s, %v after the fault on %s", ms(time.Now()), l.id, took.Round(time.Millisecond), old.id)
	return l
}

func (s *step) isolate(n *node) (heal func()) {
	s.t.Helper()
	if err := s.c.lab.isolate(n.idx); err != nil {
		s.t.Fatal(err)
	}
	i := s.r.addFault(Fault{Kind: "isolated", Node: n.id, From: time.Now(), Minority: true})
	s.t.Logf("%s: %s isolated from the other nodes", ms(time.Now()), n.id)
	return func() {
		s.r.endFault(i)
		if err := s.c.lab.heal(); err != nil {
			s.t.Fatal(err)
		}
		s.t.Logf("%s: healed", ms(time.Now()))
	}
}

func (s *step) kill9(n *node) (restarted func()) {
	s.t.Helper()
	s.c.signal(n, syscall.SIGKILL)
	now := time.Now()
	s.r.addFault(Fault{Kind: "kill -9", Node: n.id, From: now, To: now})
	i := s.r.addFault(Fault{Kind: "dead", Node: n.id, From: now})
	s.t.Logf("%s: %s killed with SIGKILL", ms(time.Now()), n.id)
	return func() {
		s.c.start(n)
		s.r.endFault(i)
		s.t.Logf("%s: %s restarted", ms(time.Now()), n.id)
	}
}

// watchTakeovers polls every running node every 100 ms and notes each
// time one starts claiming leadership, until stop is closed.
func (r *runner) watchTakeovers(stop <-chan struct{}) {
	client := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	leading := map[string]bool{}
	for {
		began := time.Now()
		claims := make([]bool, len(r.c.nodes))
		var wg sync.WaitGroup
		for i, n := range r.c.nodes {
			if !n.running() {
				continue
			}
			wg.Go(func() {
				resp, err := client.Get(n.url("/v1/cluster"))
				if err != nil {
					return
				}
				defer resp.Body.Close()
				var v clusterView
				claims[i] = json.NewDecoder(resp.Body).Decode(&v) == nil && v.Leader == n.id
			})
		}
		wg.Wait()
		r.mu.Lock()
		for i, n := range r.c.nodes {
			if claims[i] && !leading[n.id] {
				r.takeovers = append(r.takeovers, Takeover{Node: n.id, At: began})
			}
			leading[n.id] = claims[i]
		}
		r.mu.Unlock()
		select {
		case <-stop:
			return
		case <-time.After(time.Until(began.Add(100 * time.Millisecond))):
		}
	}
}

func (r *runner) scenario(t *testing.T, sc scenario) {
	c := r.c
	parent := c.t
	c.t = t
	defer func() { c.t = parent }()
	c.waitHealthy(30 * time.Second)

	s := &step{t: t, r: r, c: c, sc: sc, row: &row{name: sc.name, expected: silentPerRun}}
	for i := range silentPerRun {
		s.silent = append(s.silent, silentName(sc.name, i))
	}
	r.mu.Lock()
	if r.slack == nil {
		r.slack = map[string]time.Duration{}
	}
	for _, svc := range s.silent {
		r.slack[svc] = DefaultRules.Slack + sc.slack
	}
	r.mu.Unlock()
	acks0, _, failed0, _ := r.wl.snapshot()
	began := time.Now()
	sc.run(s)
	if s.next != len(s.silent) {
		t.Errorf("scenario silenced %d of its %d services", s.next, len(s.silent))
	}
	c.waitHealthy(60 * time.Second)
	r.judge(t, s, began, len(acks0), failed0)
}

// judge waits until the scenario's silent services are detected (or due),
// checks the whole history so far, and reports this scenario's counts.
func (r *runner) judge(t *testing.T, s *step, began time.Time, acks0, failed0 int) {
	for _, svc := range s.silent {
		if !r.wl.waitSilent(svc, 30*time.Second) {
			t.Errorf("%s still heartbeating 30s after it was silenced", svc)
		}
	}
	// Wait for each silent service's down action, or until it is overdue
	// (the checker then reports it missed or late).
	for {
		h, err := r.history()
		if err != nil {
			t.Fatal(err)
		}
		waiting := false
		for _, svc := range s.silent {
			last := lastAckOf(h, svc)
			due := h.due(last.Sent, last.Acked, h.Timeout[svc]+h.Slack[svc])
			if time.Now().Before(due) && !hasDown(h, svc, last.Sent.Add(h.Timeout[svc])) {
				waiting = true
			}
		}
		if !waiting {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	// No lost heartbeat: every node must catch up with what was acknowledged.
	var lost []Violation
	deadline := time.Now().Add(15 * time.Second)
	for {
		asOf := time.Now()
		seen := map[string]map[string]time.Time{}
		var readErr error
		for _, n := range r.c.nodes {
			ls, err := lastSeen(n)
			if err != nil {
				readErr = err
				break
			}
			seen[n.id] = ls
		}
		if readErr == nil {
			h, err := r.history()
			if err != nil {
				t.Fatal(err)
			}
			if lost = CheckReplicas(h, seen, asOf); len(lost) == 0 {
				break
			}
		} else {
			lost = []Violation{{RuleLostHeartbeat, "-", "could not read the replicas: " + readErr.Error()}}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}

	h, err := r.history()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	vs := append(lost, Check(h, now, DefaultRules)...)

	row := s.row
	row.took = now.Sub(began)
	acks, _, failed, _ := r.wl.snapshot()
	row.acked, row.failed = len(acks)-acks0, failed-failed0
	detected := map[string]string{} // service -> its incident
	for _, svc := range s.silent {
		last := lastAckOf(h, svc)
		first := Exec{}
		for _, e := range h.Execs {
			if e.Service == svc && e.Event == "down" && !e.At.Before(last.Sent.Add(h.Timeout[svc])) &&
				(first.At.IsZero() || e.At.Before(first.At)) {
				first = e
			}
		}
		if first.At.IsZero() {
			continue
		}
		row.detected++
		detected[svc] = first.Incident
		row.worstDetection = max(row.worstDetection, first.At.Sub(last.Acked.Add(h.Timeout[svc])))
	}
	for _, e := range h.Execs {
		switch {
		case e.Event == "down" && detected[e.Service] == e.Incident:
			row.runs++
		case e.At.Before(began):
		case e.Event == "down":
			row.otherDown++
		default:
			row.otherRecovered++
		}
	}
	for _, k := range h.Takeovers {
		if !k.At.Before(began) {
			row.takeovers = append(row.takeovers, fmt.Sprintf("%s@+%.1fs", k.Node, k.At.Sub(began).Seconds()))
		}
	}
	for _, v := range vs {
		if r.seen[v.String()] {
			continue
		}
		r.seen[v.String()] = true
		row.violations++
		t.Errorf("violation: %s", v)
	}
	r.mu.Lock()
	r.rows = append(r.rows, *row)
	r.mu.Unlock()
	t.Logf("%s: heartbeats acknowledged %d (rounds no node acknowledged: %d); down actions expected %d, run for %d (%d runs), at worst %v after the timeout; "+
		"actions for services still beating: %d down, %d recovered; violations %d; new leader after %s; takeovers seen %s",
		row.name, row.acked, row.failed, row.expected, row.detected, row.runs, row.worstDetection.Round(time.Millisecond),
		row.otherDown, row.otherRecovered, row.violations, durations(row.newLeader), strings.Join(row.takeovers, " "))
}

// final checks the whole run once every silence is due, and prints the
// table of counts.
func (r *runner) final(t *testing.T) {
	h, err := r.history()
	if err != nil {
		t.Fatal(err)
	}
	var latest time.Time
	for svc := range h.Silenced {
		last := lastAckOf(h, svc)
		if due := h.due(last.Sent, last.Acked, h.Timeout[svc]+h.Slack[svc]); due.After(latest) && !hasDown(h, svc, last.Sent.Add(h.Timeout[svc])) {
			latest = due
		}
	}
	time.Sleep(time.Until(latest))
	if h, err = r.history(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, v := range Check(h, time.Now(), DefaultRules) {
		if !r.seen[v.String()] {
			r.seen[v.String()] = true
			total++
			t.Errorf("violation (whole run): %s", v)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-26s %6s %6s %8s %8s %5s %9s %11s %10s %-16s %s\n", "scenario", "acked", "failed",
		"expected", "detected", "runs", "worst", "other d/r", "violations", "new leader", "took")
	for _, row := range r.rows {
		fmt.Fprintf(&b, "%-26s %6d %6d %8d %8d %5d %9v %11s %10d %-16s %v\n", row.name, row.acked, row.failed,
			row.expected, row.detected, row.runs, row.worstDetection.Round(10*time.Millisecond),
			fmt.Sprintf("%d/%d", row.otherDown, row.otherRecovered), row.violations, durations(row.newLeader),
			row.took.Round(100*time.Millisecond))
		total += row.violations
	}
	fmt.Fprintf(&b, "acked: heartbeats acknowledged; failed: rounds in which no node acknowledged; expected/detected/runs: down actions\n"+
		"owed to the scenario's silent services, services that got one, times they ran; worst: latest of those after the\n"+
		"timeout; other d/r: down/recovered actions for services still beating (allowed by a gap in their acks)\n")
	downs, recovered := 0, 0
	for _, e := range h.Execs {
		if e.Event == "down" {
			downs++
		} else {
			recovered++
		}
	}
	fmt.Fprintf(&b, "whole run: %d heartbeats acknowledged, %d actions run (%d down, %d recovered) for %d silenced services, %d violations, %v",
		len(h.Acks), len(h.Execs), downs, recovered, len(h.Silenced), total, time.Since(r.start).Round(time.Second))
	t.Log(b.String())
}

func lastAckOf(h *History, svc string) Ack {
	last := Ack{Sent: h.Start, Acked: h.Start}
	for _, a := range h.Acks {
		if a.Service == svc && a.Sent.After(last.Sent) {
			last = a
		}
	}
	return last
}

func hasDown(h *History, svc string, after time.Time) bool {
	for _, e := range h.Execs {
		if e.Service == svc && e.Event == "down" && !e.At.Before(after) {
			return true
		}
	}
	return false
}

func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.Round(time.Millisecond).String())
	}
	return strings.Join(out, ", ")
}

// ---- scenarios --------------------------------------------------------------

// leaderIsolated: the leader is cut off from both followers for 15 s. The
// first silent service's deadline falls while it is cut off: the new
// leader, not the old one, must act on it.
func leaderIsolated(s *step) {
	old := s.leader()
	s.silence()
	s.sleep(time.Second)
	heal := s.isolate(old)
	cut := time.Now()
	s.newLeader(s.others(old), old, cut)
	s.sleep(2 * time.Second)
	s.silence()
	s.sleep(4 * time.Second)
	s.silence()
	s.sleep(time.Until(cut.Add(15 * time.Second)))
	heal()
}

// followerIsolated: a follower is cut off for 10 s; the leader keeps its
// majority and goes on.
func followerIsolated(s *step) {
	l := s.leader()
	f := s.others(l)[0]
	s.silence()
	s.sleep(500 * time.Millisecond)
	heal := s.isolate(f)
	cut := time.Now()
	s.sleep(3 * time.Second)
	s.silence()
	s.sleep(3 * time.Second)
	s.silence()
	s.sleep(time.Until(cut.Add(10 * time.Second)))
	heal()
}

// leaderStopped: the leader is frozen with SIGSTOP for 6 s, far longer than
// the election timeout, then woken: a stale leader that still believes it
// leads, with whatever it had in flight.
func leaderStopped(s *step) {
	old := s.leader()
	s.silence()
	s.sleep(time.Second)
	s.c.signal(old, syscall.SIGSTOP)
	stop := time.Now()
	i := s.r.addFault(Fault{Kind: "SIGSTOP", Node: old.id, From: stop})
	s.t.Logf("%s: %s stopped (SIGSTOP)", ms(time.Now()), old.id)
	s.newLeader(s.others(old), old, stop)
	s.silence()
	s.sleep(time.Until(stop.Add(6 * time.Second)))
	s.c.signal(old, syscall.SIGCONT)
	s.r.endFault(i)
	s.t.Logf("%s: %s continued (SIGCONT)", ms(time.Now()), old.id)
	s.silence()
	s.sleep(2 * time.Second)
}

// killLeaderThenFollower: kill -9 of the leader, then of one of the two
// left, so the last node stands alone (a minority: it must not act); then
// both are restarted.
func killLeaderThenFollower(s *step) {
	old := s.leader()
	s.silence()
	s.sleep(time.Second)
	restartLeader := s.kill9(old)
	killed := time.Now()
	l2 := s.newLeader(s.others(old), old, killed)
	s.silence()
	s.sleep(4 * time.Second)
	f := s.others(old, l2)[0]
	restartFollower := s.kill9(f)
	alone := s.r.addFault(Fault{Kind: "alone", Node: l2.id, From: time.Now(), Minority: true})
	s.sleep(time.Second)
	s.silence() // takes effect once a heartbeat is acknowledged again
	s.sleep(4 * time.Second)
	restarted := time.Now()
	s.r.endFault(alone)
	restartLeader()
	restartFollower()
	s.c.waitHealthy(60 * time.Second)
	s.t.Logf("%s: healthy again %v after the restarts", ms(time.Now()), time.Since(restarted).Round(time.Millisecond))
	s.sleep(time.Second)
}

// rollingRestart restarts each node in turn (SIGTERM, then the same command
// line) while the workload runs, waiting for the cluster to be whole again
// before the next.
func rollingRestart(s *step) {
	for _, n := range s.c.nodes {
		wasLeader := s.leader() == n
		s.silence()
		s.c.signal(n, syscall.SIGTERM)
		stopped := time.Now()
		i := s.r.addFault(Fault{Kind: "restart", Node: n.id, From: stopped})
		s.t.Logf("%s: %s stopped (SIGTERM)%s", ms(time.Now()), n.id, map[bool]string{true: ", it was the leader"}[wasLeader])
		if wasLeader {
			s.newLeader(s.others(n), n, stopped)
		}
		s.sleep(time.Second)
		s.c.start(n)
		s.c.waitHealthy(60 * time.Second)
		s.r.endFault(i)
		s.t.Logf("%s: %s back, cluster whole again %v after the stop", ms(time.Now()), n.id, time.Since(stopped).Round(time.Millisecond))
		s.sleep(time.Second)
	}
}

// wipeDataDir: a follower is killed, its data dir removed, and it comes
// back empty with the same id and address; it must catch up before it
// counts, and acknowledged heartbeats must be on it afterwards.
func wipeDataDir(s *step) {
	l := s.leader()
	f := s.others(l)[0]
	s.silence()
	restart := s.kill9(f)
	wiped := time.Now()
	if err := os.RemoveAll(f.dataDir); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("%s: %s's data dir removed", ms(time.Now()), f.id)
	s.silence()
	s.sleep(time.Second)
	restart()
	s.c.waitHealthy(60 * time.Second)
	s.t.Logf("%s: %s back with an empty data dir, cluster looks whole %v after the wipe", ms(time.Now()), f.id, time.Since(wiped).Round(time.Millisecond))
	s.silence()
	// The leader may demote it until it has caught up: wait until it has
	// been whole for longer than the leader takes to notice (its
	// reconciliation runs every 5 s).
	s.c.waitStable(60*time.Second, 6*time.Second)
	s.t.Logf("%s: cluster whole for 6s in a row", ms(time.Now()))
}

// lossySlowLinks: every link between nodes loses 5 % of its packets each
// way, and Raft traffic is delayed 100 ms each way, for 15 s.
func lossySlowLinks(s *step) {
	s.silence()
	if err := s.c.lab.lossy(0.05); err != nil {
		s.t.Fatal(err)
	}
	s.c.setDelay(100 * time.Millisecond)
	i := s.r.addFault(Fault{Kind: "loss+delay", Node: "*", From: time.Now()})
	s.t.Logf("%s: 5%% loss on every link between nodes, 100ms delay on Raft", ms(time.Now()))
	s.sleep(4 * time.Second)
	s.silence()
	s.sleep(5 * time.Second)
	s.silence()
	s.sleep(6 * time.Second)
	s.r.endFault(i)
	s.c.setDelay(0)
	if err := s.c.lab.heal(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("%s: links healed", ms(time.Now()))
}
