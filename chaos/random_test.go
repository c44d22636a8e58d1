package chaos

// TestChaosRandom: random fault schedules (issue 13), run by `make
// chaos-random` (scripts/chaos-random.sh). One cluster, as in TestChaos,
// runs the schedules one after the other under the workload; each draws
// its episodes from the run's seed and its index (schedule_test.go), runs
// them, heals, and the checker judges the whole history so far, adds the
// leadership rules (leadership_test.go) and compares the replicas.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// randomConfig is what the make target passes in the environment.
type randomConfig struct {
	seed            uint64
	skip, schedules int
	summary         string // file the final line is written to
}

func randomConfigFromEnv(t *testing.T) randomConfig {
	cfg := randomConfig{schedules: 10, summary: os.Getenv("WATCHDOG_CHAOS_SUMMARY")}
	num := func(name string, into *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				t.Fatalf("%s=%q: want a whole number", name, v)
			}
			*into = n
		}
	}
	num("WATCHDOG_CHAOS_SCHEDULES", &cfg.schedules)
	num("WATCHDOG_CHAOS_SKIP", &cfg.skip)
	v := os.Getenv("WATCHDOG_CHAOS_SEED")
	if v == "" {
		cfg.seed = uint64(time.Now().UnixNano()) % 1_000_000_000
	} else {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("WATCHDOG_CHAOS_SEED=%q: want a whole number", v)
		}
		cfg.seed = seed
	}
	return cfg
}

func TestChaosRandom(t *testing.T) {
	if os.Getenv("WATCHDOG_CHAOS_RANDOM") == "" {
		t.Skip("random fault schedules on real processes: run them with `make chaos-random` (as root)")
	}
	cfg := randomConfigFromEnv(t)
	fmt.Printf("chaos-random: seed %d, schedules %d to %d\n", cfg.seed, cfg.skip, cfg.skip+cfg.schedules-1)
	ran, violations := 0, 0
	summary := func() {
		line := fmt.Sprintf("chaos-random: %d schedules, %d violations, seed %d\n", ran, violations, cfg.seed)
		if cfg.summary == "" {
			return
		}
		if err := os.WriteFile(cfg.summary, []byte(line), 0o644); err != nil {
			t.Errorf("writing %s: %v", cfg.summary, err)
		}
	}
	summary()

	r := newRun(t, nil, silentTimeout)
	r.floors = true
	r.extra = func(h *History, _ time.Time) []Violation { return CheckLeadership(h, DefaultRules) }
	for i := cfg.skip; i < cfg.skip+cfg.schedules; i++ {
		sch := planSchedule(cfg.seed, i)
		began := time.Now()
		var v int
		ok := t.Run(fmt.Sprintf("schedule-%d", i), func(t *testing.T) { v = r.runSchedule(t, sch) })
		if !ok && v == 0 {
			v = 1 // failed without a broken rule: it did not recover (logged)
		}
		ran++
		violations += v
		fmt.Printf("schedule %d: %s: %d violations, %v\n", i, sch.brief(), v, time.Since(began).Round(time.Second))
		if v > 0 {
			fmt.Printf("schedule %d FAILED; replay it with: make chaos-random SEED=%d SKIP=%d SCHEDULES=1%s\n", i, cfg.seed, i, sch)
		}
		summary()
		if !ok {
			if err := r.c.healthyWithin(60 * time.Second); err != nil {
				t.Errorf("after schedule %d: %v: not running the rest", i, err)
				break
			}
		}
	}
	r.wl.stopAll()
	if t.Failed() || os.Getenv("WATCHDOG_CHAOS_KEEP") != "" {
		r.dump(t, filepath.Join(r.dir, "history.json"))
	}
}

// runSchedule runs one schedule and returns the violations it found.
func (r *runner) runSchedule(t *testing.T, sch schedule) int {
	c := r.c
	parent := c.t
	c.t = t
	defer func() { c.t = parent }()
	name := fmt.Sprintf("schedule-%d", sch.Index)
	t.Logf("%s (seed %d):%s", name, sch.Seed, sch)
	s := &step{t: t, r: r, c: c, sc: scenario{name: name}, row: &row{name: name}}
	for i, e := range sch.Episodes {
		if e.Silence >= 0 {
			s.silent = append(s.silent, fmt.Sprintf("r%d-q%d", sch.Index, i+1))
		}
	}
	s.row.expected = len(s.silent)
	r.mu.Lock()
	if r.slack == nil {
		r.slack = map[string]time.Duration{}
	}
	for _, svc := range s.silent {
		r.services[svc] = silentTimeout // the config's defaults
		r.slack[svc] = DefaultRules.Slack
	}
	r.mu.Unlock()
	c.waitHealthy(60 * time.Second)
	acks0, _, failed0, _ := r.wl.snapshot()
	began := time.Now()
	r.wl.add(s.silent...)

	u := &undoer{}
	healed := false
	defer func() {
		if !healed {
			s.healAll(u)
		}
	}()
	for i, e := range sch.Episodes {
		s.runEpisode(u, e)
		if err := c.healthyWithin(45 * time.Second); err != nil {
			r.report(t, s.row, []Violation{{RuleNotRecovered, "-", fmt.Sprintf("after episode %d (%s): %v", i+1, e, err)}})
			t.FailNow()
		}
	}
	s.healAll(u)
	healed = true
	c.waitStable(60*time.Second, 2*time.Second)
	r.judge(t, s, began, len(acks0), failed0)
	r.report(t, s.row, r.replicasEqual())
	return s.row.violations
}

// runEpisode runs one episode on its timeline: the main fault from its
// start for Hold, the conditions in their windows, the silence.
func (s *step) runEpisode(u *undoer, e episode) {
	s.t.Logf("%s: episode: %s", ms(time.Now()), e)
	type event struct {
		at time.Duration
		do func()
	}
	var events []event
	var endMain func()
	events = append(events, event{0, func() { endMain = u.push(s.startMain(e)) }})
	events = append(events, event{e.Hold, func() { endMain() }})
	for _, c := range e.Conds {
		var end func()
		events = append(events, event{c.Start, func() { end = u.push(s.startCond(c)) }})
		events = append(events, event{c.Start + c.Hold, func() { end() }})
	}
	if e.Silence >= 0 {
		events = append(events, event{e.Silence, s.silence})
	}
	slices.SortStableFunc(events, func(a, b event) int { return int(a.at - b.at) })
	start := time.Now()
	for _, ev := range events {
		time.Sleep(time.Until(start.Add(ev.at)))
		ev.do()
	}
	time.Sleep(time.Until(start.Add(e.Hold + e.Tail)))
}

// report counts and reports the violations not reported before.
func (r *runner) report(t *testing.T, row *row, vs []Violation) {
	for _, v := range vs {
		if r.seen[v.String()] {
			continue
		}
		r.seen[v.String()] = true
		row.violations++
		t.Errorf("violation: %s", v)
	}
}

// replicasEqual compares every node's services, read while no heartbeat is
// sent, once all have applied the same index (and still had after the
// read). Tried five times, 2 s apart, as the leader may commit on its own.
func (r *runner) replicasEqual() []Violation {
	var last error
	for range 5 {
		r.wl.pause()
		views, err := r.c.servicesAtOneIndex(time.Second)
		r.wl.resume()
		if err == nil {
			return CheckReplicasEqual(views)
		}
		last = err
		time.Sleep(2 * time.Second)
	}
	return []Violation{{RuleReplicasDiffer, "-", "could not read the replicas at one applied index: " + last.Error()}}
}

// servicesAtOneIndex reads every node's /v1/services once all have applied
// the same index as the highest commit index, unchanged across the reads.
func (c *cluster) servicesAtOneIndex(within time.Duration) (map[string][]byte, error) {
	deadline := time.Now().Add(within)
	var why string
	for time.Now().Before(deadline) {
		index, err := c.settledIndex()
		if err != nil {
			why = err.Error()
			time.Sleep(50 * time.Millisecond)
			continue
		}
		views := map[string][]byte{}
		for _, n := range c.nodes {
			body, err := getBody(n.url("/v1/services"))
			if err != nil {
				return nil, err
			}
			views[n.id] = body
		}
		if again, err := c.settledIndex(); err == nil && again == index {
			return views, nil
		}
		why = "the applied index moved during the read"
	}
	return nil, fmt.Errorf("not settled within %v: %s", within, why)
}

// settledIndex is the index every node has applied, if they all have the
// same one and it is the highest commit index any knows.
func (c *cluster) settledIndex() (uint64, error) {
	var commit, applied uint64
	for i, n := range c.nodes {
		ci, ai, err := raftIndexes(n)
		if err != nil {
			return 0, err
		}
		if i > 0 && ai != applied {
			return 0, fmt.Errorf("%s applied %d, %s %d", c.nodes[0].id, applied, n.id, ai)
		}
		applied, commit = ai, max(commit, ci)
	}
	if applied != commit {
		return 0, fmt.Errorf("applied %d of %d committed", applied, commit)
	}
	return applied, nil
}

func getBody(u string) ([]byte, error) {
	resp, err := probe.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	return body, nil
}
