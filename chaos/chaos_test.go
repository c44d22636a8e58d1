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
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	// The clock scenarios hold detection to what docs/guarantees.md states:
	// within a second of the timeout (clock_test.go).
	{name: "clock-step-forward", slack: clockSlack - DefaultRules.Slack, run: clockStepForward},
	{name: "clock-step-back", slack: clockSlack - DefaultRules.Slack, run: clockStepBack},
	{name: "clock-skew-failover", slack: clockSlack - DefaultRules.Slack, run: clockSkewFailover},
}

func silentName(sc string, i int) string { return fmt.Sprintf("%s-q%d", sc, i+1) }

func TestChaos(t *testing.T) {
	if os.Getenv("WATCHDOG_CHAOS") == "" {
		t.Skip("fault-injection suite on real processes: run it with `make chaos` (WATCHDOG_CHAOS=1, as root)")
	}
	services := map[string]time.Duration{}
	for _, sc := range scenarios {
		for i := range silentPerRun {
			services[silentName(sc.name, i)] = silentTimeout
		}
	}
	r := newRun(t, services, 10*time.Second)
	c := r.c
	for _, sc := range scenarios {
		if !t.Run(sc.name, func(t *testing.T) { r.scenario(t, sc) }) {
			if err := c.healthyWithin(30 * time.Second); err != nil {
				t.Fatalf("after %s: %v: not running the rest", sc.name, err)
			}
		}
	}
	r.wl.stopAll()
	r.final(t)
	r.dump(t, filepath.Join(r.dir, "history.json"))
}

// newRun builds the binary, makes the lab and starts three nodes whose
// config defines the steady services and extra (each beaten from the
// start), and services first seen through a heartbeat with timeout
// defaults; it returns once the cluster is whole and stable under the
// workload. t.Cleanup undoes all of it.
func newRun(t *testing.T, extra map[string]time.Duration, defaults time.Duration) *runner {
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
	for i := range steadyCount {
		services[fmt.Sprintf("steady-%d", i+1)] = steadyTimeout
	}
	for id, d := range extra {
		services[id] = d
	}

	lab := newLab(t, 3)
	c := newCluster(t, lab, bin, dir, services, defaults)
	r := &runner{t: t, c: c, dir: dir, services: services, start: time.Now(), seen: map[string]bool{}}
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
	return r
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
// It is the test build (tag watchdog_testclock), whose wall clock the clock
// scenarios can step; the product build has no such hook.
func buildBinary(t *testing.T, dir string) string {
	if b := os.Getenv("WATCHDOG_CHAOS_BIN"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	out := filepath.Join(dir, "watchdog")
	cmd := exec.Command("go", "build", "-tags", "watchdog_testclock", "-o", out, "./cmd/watchdog")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags watchdog_testclock ./cmd/watchdog: %v\n%s", err, b)
	}
	t.Logf("built %s in %v", out, time.Since(start).Round(time.Millisecond))
	return out
}

// runner holds what the scenarios share: the cluster, the workload, the
// faults injected so far, and the violations already reported.
type runner struct {
	t        *testing.T
	c        *cluster
	dir      string
	wl       *workload
	services map[string]time.Duration
	start    time.Time

	mu        sync.Mutex
	faults    []Fault
	takeovers []Takeover
	// leaderships: a new leader named by a majority of the nodes
	// (watchTakeovers).
	leaderships []Takeover
	slack       map[string]time.Duration
	seen        map[string]bool // violations reported already
	rows        []row
	stampLag    time.Duration // History.StampLag
	// clocks are the wall clock offsets set, in order (setClock); with
	// floors set, history() gives the checker each leadership's stamp
	// floor from them (History.Terms) instead of one StampLag.
	clocks []clockChange
	floors bool
	// extra checks the history further after the rules every run checks
	// (the random schedules' leadership rules), nil for none.
	extra func(h *History, now time.Time) []Violation
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
	timeout := maps.Clone(r.services)
	h := &History{Start: r.start, Timeout: timeout, Acks: acks, Execs: execs,
		Silenced: silenced, Slack: slack, Faults: faults, Takeovers: slices.Clone(r.takeovers),
		Leaderships: slices.Clone(r.leaderships), Failed: r.wl.failures(), StampLag: r.stampLag}
	if r.floors {
		h.Terms = stampTerms(h.Takeovers, r.clocks, acks)
	}
	return h, nil
}

// watchTakeovers polls every running node every 100 ms and notes each
// time one starts claiming leadership, and each time a majority of the
// nodes starts naming a new leader that claims it too (a leadership), until
// stop is closed.
func (r *runner) watchTakeovers(stop <-chan struct{}) {
	client := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	leading := map[string]bool{}
	confirmed := ""
	for {
		began := time.Now()
		named := make([]string, len(r.c.nodes))
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
				if json.NewDecoder(resp.Body).Decode(&v) == nil {
					named[i] = v.Leader
				}
			})
		}
		wg.Wait()
		votes := map[string]int{}
		for _, l := range named {
			if l != "" {
				votes[l]++
			}
		}
		r.mu.Lock()
		for i, n := range r.c.nodes {
			claims := named[i] == n.id
			if claims && !leading[n.id] {
				r.takeovers = append(r.takeovers, Takeover{Node: n.id, At: began})
			}
			leading[n.id] = claims
			if claims && votes[n.id] > len(r.c.nodes)/2 && confirmed != n.id {
				confirmed = n.id
				r.leaderships = append(r.leaderships, Takeover{Node: n.id, At: began})
			}
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
