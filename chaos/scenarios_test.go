package chaos

// The scenarios of TestChaos (chaos_test.go) and the step helpers they are
// written with: finding the leader, isolating and killing nodes.

import (
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

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
