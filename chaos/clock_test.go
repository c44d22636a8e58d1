package chaos

// The clock scenarios (issue 13): a node's wall clock steps an hour either
// way, or leadership passes to nodes whose clocks are 30 s off the old
// leader's. The nodes run the test build, which adds the offset in a file
// to their wall clock (cmd/watchdog/testclock.go); the test rewrites it.
// Silence is measured on the leader's monotonic clock, so the checker's
// rules hold as for any scenario, with detection held to a second after
// the timeout (clockSlack).

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// clockSlack is how late after its timeout a silent service's down action
// may run in the clock scenarios: the bound docs/guarantees.md states.
const clockSlack = time.Second

// setClock sets n's wall clock offset and waits until the node says it
// took effect. A node that is not running takes it when it starts.
func (s *step) setClock(n *node, offset time.Duration) {
	s.t.Helper()
	before := logSize(n.logFile)
	s.r.mu.Lock()
	s.r.clocks = append(s.r.clocks, clockChange{Node: n.id, At: time.Now(), Offset: offset})
	s.r.mu.Unlock()
	tmp := n.clockFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(offset.String()+"\n"), 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, n.clockFile); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("%s: %s's wall clock set %s off", ms(time.Now()), n.id, offset)
	changed := n.clock != offset
	n.clock = offset
	if !changed || !n.running() {
		return
	}
	want := fmt.Sprintf("wall clock offset now %s", offset)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logFrom(n.logFile, before), want) {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s did not log %q within 5s: is it the test build (-tags watchdog_testclock)?", n.id, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// resetClocks sets every node's wall clock right again.
func (s *step) resetClocks() {
	for _, n := range s.c.nodes {
		s.setClock(n, 0)
	}
}

func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func logFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

// clockStepForward: the leader's wall clock jumps an hour ahead, as an NTP
// step after a VM resume would. Measured against its wall clock, every
// heartbeat it stamped before would be an hour old: every service dead at
// once. The first silent service's deadline falls after the step, the
// others go silent after it.
func clockStepForward(s *step) {
	l := s.leader()
	s.silence()
	s.sleep(time.Second)
	s.setClock(l, time.Hour)
	s.sleep(2 * time.Second)
	s.silence()
	s.sleep(2 * time.Second)
	s.silence()
	s.sleep(5 * time.Second)
	if now := s.leader(); now != l {
		s.t.Logf("%s: leadership moved from %s to %s during the scenario", ms(time.Now()), l.id, now.id)
	}
	s.resetClocks()
}

// clockStepBack: the leader's wall clock jumps an hour back. Measured
// against its wall clock, a service that stopped would be found an hour
// late, and heartbeats it stamped would not move last_seen for an hour.
func clockStepBack(s *step) {
	l := s.leader()
	s.silence()
	s.sleep(time.Second)
	s.setClock(l, -time.Hour)
	s.sleep(2 * time.Second)
	s.silence()
	s.sleep(2 * time.Second)
	s.silence()
	s.sleep(5 * time.Second)
	if now := s.leader(); now != l {
		s.t.Logf("%s: leadership moved from %s to %s during the scenario", ms(time.Now()), l.id, now.id)
	}
	s.resetClocks()
}

// clockSkewFailover: leadership passes (kill -9) to a node whose clock is
// 30 s behind the old leader's, then to one 30 s or more ahead of that.
// Behind, the stamps the old leader committed are in the new leader's
// future: its own would not move last_seen, and a service that died then
// would be found 30 s late. Ahead, every stamp looks 30 s old.
func clockSkewFailover(s *step) {
	l0 := s.leader()
	for _, n := range s.others(l0) {
		s.setClock(n, -30*time.Second)
	}
	s.silence()
	s.sleep(time.Second)
	restart0 := s.kill9(l0)
	killed := time.Now()
	l1 := s.newLeader(s.others(l0), l0, killed)
	// l1 goes on from the latest time l0 committed, which its clock is
	// behind: its stamps trail the test's clock by about the failover.
	s.r.mu.Lock()
	s.r.stampLag = max(s.r.stampLag, time.Since(killed)+500*time.Millisecond)
	s.r.mu.Unlock()
	s.sleep(time.Second)
	s.silence()
	s.sleep(2 * time.Second)
	restart0()
	s.c.waitHealthy(60 * time.Second)
	third := s.others(l0, l1)[0]
	s.setClock(third, 30*time.Second)
	s.sleep(time.Second)
	restart1 := s.kill9(l1)
	s.newLeader(s.others(l1), l1, time.Now())
	s.silence()
	s.sleep(5 * time.Second)
	restart1()
	s.c.waitHealthy(60 * time.Second)
	s.resetClocks()
}
