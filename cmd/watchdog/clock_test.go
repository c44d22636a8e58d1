package main

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// steppedClock is the system clock with a wall clock a test can step: the
// monotonic clock is the real one, as it is on a machine whose time of
// day an NTP step or an operator moves.
type steppedClock struct {
	sys    *cluster.SystemClock
	offset atomic.Int64
}

func (c *steppedClock) Wall() time.Time      { return c.sys.Wall().Add(time.Duration(c.offset.Load())) }
func (c *steppedClock) Mono() time.Duration  { return c.sys.Mono() }
func (c *steppedClock) step(d time.Duration) { c.offset.Add(int64(d)) }

// clocks gives every node of a test cluster its own stepped clock.
type clocks struct {
	mu     sync.Mutex
	byNode map[string]*steppedClock
}

func (cs *clocks) tune(cc *cluster.Config) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := &steppedClock{sys: cluster.NewSystemClock()}
	cs.byNode[cc.NodeID] = c
	cc.Clock = c
}

func (cs *clocks) of(a *Agent) *steppedClock {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.byNode[a.Node.ID()]
}

// clockTimeout is the services' timeout in the clock tests.
const clockTimeout = time.Second

// clockCluster is three agents with their own clocks watching two services:
// alive, which beats every second (timeout 3 s) and never stops, so that a
// check of the watcher almost always falls between two of its heartbeats;
// and dies, of clockTimeout, which beats every 200 ms until the test
// silences it.
func clockCluster(t *testing.T) (*testCluster, *clocks, *beats) {
	t.Helper()
	argv, _ := recorder(t)
	file := fileConfig(t, fmt.Sprintf(`
check_interval: 100ms
actions:
  record: {exec: [%q]}
services:
  alive: {timeout: 3s, actions: [record]}
  dies: {timeout: %s, actions: [record]}
`, argv[0], clockTimeout))
	cs := &clocks{byNode: map[string]*steppedClock{}}
	c := newTestCluster(t, 3, file, cs.tune)
	c.leader(3)
	b := &beats{c: c, stop: map[string]func(){
		"alive": keepBeatingQuietly(c, "alive", time.Second),
		"dies":  keepBeatingQuietly(c, "dies", 200*time.Millisecond),
	}}
	t.Cleanup(b.stopAll)
	return c, cs, b
}

// beats heartbeats services through every running agent in turn until
// stopped; the test sends a silenced service's last heartbeat itself.
type beats struct {
	c    *testCluster
	mu   sync.Mutex
	stop map[string]func()
}

func (b *beats) stopAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, stop := range b.stop {
		stop()
		delete(b.stop, id)
	}
}

// silence stops id's heartbeats after one last one that is acknowledged,
// and returns when that one was sent: the service is silent from then on.
func (b *beats) silence(t *testing.T, id string) time.Time {
	t.Helper()
	b.mu.Lock()
	b.stop[id]()
	delete(b.stop, id)
	b.mu.Unlock()
	var sent time.Time
	waitFor(t, 10*time.Second, "the last heartbeat of "+id+" to be acknowledged", func() bool {
		for _, a := range b.c.running() {
			sent = time.Now()
			if beatOnce(a, id) == http.StatusOK {
				return true
			}
		}
		return false
	})
	return sent
}

func beatOnce(a *Agent, id string) int {
	resp, err := http.Post("http://"+a.Addr+"/v1/heartbeat/"+id, "text/plain", nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// keepBeatingQuietly is keepBeating without the test: a heartbeat that
// fails (during a failover) is simply sent again at the next tick.
func keepBeatingQuietly(c *testCluster, id string, every time.Duration) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			for _, a := range rotate(c.running(), i) {
				if beatOnce(a, id) == http.StatusOK {
					break
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return sync.OnceFunc(func() { close(done); <-finished })
}

// noDeathFor fails if alive or dies (both beating) has an incident during d.
func noDeathFor(t *testing.T, c *testCluster, d time.Duration) {
	t.Helper()
	until := time.Now().Add(d)
	for time.Now().Before(until) {
		for _, a := range c.running() {
			for _, id := range []string{"alive", "dies"} {
				if s, ok := serviceOn(a, id); ok && len(s.Incidents) > 0 {
					t.Fatalf("false death: %s, beating, has incident %+v (seen on %s)",
						id, *s.Current(), a.Node.ID())
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// detectedInTime silences dies and checks that its incident opens neither
// before clockTimeout of silence (a false death) nor after clockTimeout
// plus a second (a missed death), while alive stays up throughout.
func detectedInTime(t *testing.T, c *testCluster, b *beats) {
	t.Helper()
	sent := b.silence(t, "dies")
	earliest, latest := sent.Add(clockTimeout), sent.Add(clockTimeout+time.Second)
	for {
		leader := c.currentLeader()
		if leader != nil {
			if s, _ := serviceOn(leader, "alive"); len(s.Incidents) > 0 {
				t.Fatalf("false death: alive has incident %+v", *s.Current())
			}
			s, _ := serviceOn(leader, "dies")
			seen := time.Now()
			if s.Status == fsm.StatusDown {
				if seen.Before(earliest) {
					t.Fatalf("false death: dies detected %s after its last heartbeat was sent, before its timeout of %s",
						seen.Sub(sent), clockTimeout)
				}
				inc := s.Current()
				t.Logf("dies detected within %s of its last heartbeat (timeout %s); stamped %s apart",
					seen.Sub(sent).Round(time.Millisecond), clockTimeout, time.Duration(inc.Opened-inc.LastSeen).Round(time.Millisecond))
				return
			}
		}
		if time.Now().After(latest) {
			t.Fatalf("missed death: dies not detected %s after its last heartbeat (timeout %s)", time.Since(sent), clockTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// currentLeader is the running agent that leads, nil during an election.
func (c *testCluster) currentLeader() *Agent {
	for _, a := range c.running() {
		if a.Node.IsLeader() {
			return a
		}
	}
	return nil
}

// TestWallClockStepOnTheLeader steps the leader's wall clock an hour either
// way while services beat. Forward, comparing the wall clock with stamps
// made before the step would find every service an hour silent; backward,
// heartbeats stamped an hour earlier would not move last_seen, and a
// service that died would be found an hour late. Silence is measured on the
// monotonic clock: neither happens.
func TestWallClockStepOnTheLeader(t *testing.T) {
	for _, step := range []time.Duration{time.Hour, -time.Hour} {
		t.Run(fmt.Sprintf("step %s", step), func(t *testing.T) {
			c, cs, b := clockCluster(t)
			noDeathFor(t, c, 500*time.Millisecond)
			leader := c.leader(3)
			cs.of(leader).step(step)
			// Beating on for longer than alive's timeout: nothing may die.
			noDeathFor(t, c, 3*clockTimeout)
			if l := c.leader(3); l != leader {
				t.Fatalf("leadership moved from %s to %s: the step was not tested on one leader", leader.Node.ID(), l.Node.ID())
			}
			detectedInTime(t, c, b)
		})
	}
}

// TestSkewAtFailover hands leadership to nodes whose wall clocks are 30 s
// ahead of, or behind, the old leader's. Ahead, the stamps the old leader
// committed look 30 s old; behind, the new leader's stamps would not move
// last_seen for 30 s and a service that died then would be found that much
// late. Neither may happen: services that beat through the failover stay
// up, and one silenced under the new leader is found in time.
func TestSkewAtFailover(t *testing.T) {
	for _, skew := range []time.Duration{30 * time.Second, -30 * time.Second} {
		t.Run(fmt.Sprintf("skew %s", skew), func(t *testing.T) {
			c, cs, b := clockCluster(t)
			old := c.leader(3)
			for _, a := range c.running() {
				if a != old {
					cs.of(a).step(skew)
				}
			}
			noDeathFor(t, c, 500*time.Millisecond)
			c.stop(old)
			leader := c.leader(3)
			if cs.of(leader).offset.Load() != int64(skew) {
				t.Fatalf("new leader %s is not skewed", leader.Node.ID())
			}
			noDeathFor(t, c, 3*clockTimeout)
			detectedInTime(t, c, b)
		})
	}
}
