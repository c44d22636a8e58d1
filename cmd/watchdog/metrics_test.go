package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/internal/promtest"
)

// scrapeAll scrapes /metrics on every running agent, by node id.
func (c *testCluster) scrapeAll(t *testing.T) map[string]promtest.Families {
	t.Helper()
	out := map[string]promtest.Families{}
	for _, a := range c.running() {
		mfs, err := promtest.Scrape("http://" + a.Addr + "/metrics")
		if err != nil {
			t.Fatalf("scrape %s: %v", a.Node.ID(), err)
		}
		out[a.Node.ID()] = mfs
	}
	return out
}

// sum adds up one series over every node's scrape.
func sum(scrapes map[string]promtest.Families, name string, labels ...string) float64 {
	var total float64
	for _, mfs := range scrapes {
		v, _ := mfs.Value(name, labels...)
		total += v
	}
	return total
}

// beat sends one heartbeat through a in the given route form.
func beat(t *testing.T, a *Agent, form, id string) {
	t.Helper()
	var resp *http.Response
	var err error
	if form == "query" {
		resp, err = http.Get("http://" + a.Addr + "/heartbeat?id=" + id)
	} else {
		resp, err = http.Post("http://"+a.Addr+"/v1/heartbeat/"+id, "text/plain", nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s heartbeat %s via %s: %d", form, id, a.Node.ID(), resp.StatusCode)
	}
}

// term is the highest Raft term among the running agents: it moves on
// every election, so an unchanged term means one leader throughout.
func (c *testCluster) term() uint64 {
	var term uint64
	for _, a := range c.running() {
		term = max(term, a.Node.Status().Term)
	}
	return term
}

// closeAll stops every agent of the cluster.
func (c *testCluster) closeAll() {
	for _, a := range c.running() {
		c.stop(a)
	}
}

// TestMetricsOfAThreeNodeCluster checks exact counts summed over a real
// cluster. They are exact only under one leader (a heartbeat sent through
// a node that became leader meanwhile is not forwarded; an action whose
// leader is deposed runs again): if an election happens while they are
// measured, which a loaded machine can cause, the attempt is made again
// on a fresh cluster rather than the counts loosened.
func TestMetricsOfAThreeNodeCluster(t *testing.T) {
	const attempts = 3
	for i := 1; ; i++ {
		c, leader, scrapes, oneLeader := measureMetrics(t)
		if oneLeader {
			checkMetrics(t, c, leader, scrapes)
			return
		}
		if i == attempts {
			t.Fatalf("leadership changed while the counts were measured in each of %d attempts", attempts)
		}
		t.Logf("attempt %d: leadership changed while the counts were measured; again on a fresh cluster", i)
		c.closeAll()
	}
}

// measureMetrics starts a cluster, sends heartbeats by both forms through
// every node, lets one service go down and its actions run, and scrapes
// every node. oneLeader reports that no election happened meanwhile.
func measureMetrics(t *testing.T) (c *testCluster, leader *Agent, scrapes map[string]promtest.Families, oneLeader bool) {
	argv, actions := recorder(t)
	c = newTestCluster(t, 3, fileConfig(t, fmt.Sprintf(`
check_interval: 50ms
actions:
  record: {exec: [%q]}
services:
  silent: {timeout: 500ms, actions: [record, log]}
`, argv[0])))
	leader = c.leader(3)
	term := c.term()

	// Heartbeats by both forms through every node, one at a time: each is
	// committed alone, so nothing is merged and every one is counted.
	sent, viaFollowers := map[string]float64{}, 0.0
	for i, a := range c.running() {
		for j, form := range []string{"query", "v1", "v1"} {
			beat(t, a, form, fmt.Sprintf("svc-%d-%d", i, j))
			sent[form]++
			if a != leader {
				viaFollowers++
			}
		}
	}
	up := sent["query"] + sent["v1"]
	waitFor(t, 15*time.Second, "silent's incident and its actions on every node", func() bool {
		for _, a := range c.running() {
			s, ok := serviceOn(a, "silent")
			if !ok || s.Status != fsm.StatusDown || s.Current() == nil || len(s.Current().Actions) != 2 {
				return false
			}
			for _, r := range s.Current().Actions {
				if r.State != fsm.ActionDone {
					return false
				}
			}
			if len(a.FSM.Services()) != int(up)+1 {
				return false
			}
		}
		return len(actions()) >= 1
	})
	// Gossip converges on its own schedule: wait until every node counts all three.
	waitFor(t, 15*time.Second, "every node to see three alive gossip members", func() bool {
		scrapes = c.scrapeAll(t)
		for _, mfs := range scrapes {
			if v, _ := mfs.Value("watchdog_gossip_members", "state", "alive"); v != 3 {
				return false
			}
		}
		return true
	})
	if c.term() != term {
		return c, leader, nil, false
	}
	if n := len(actions()); n != 1 {
		t.Errorf("the exec action ran %d times under one leader, want 1", n)
	}
	checkSums(t, scrapes, map[string]float64{
		"watchdog_heartbeats_received_total{form=query}":           sent["query"],
		"watchdog_heartbeats_received_total{form=v1}":              sent["v1"],
		"watchdog_heartbeats_committed_total":                      up,
		"watchdog_heartbeats_forwarded_total":                      viaFollowers,
		"watchdog_heartbeat_batches_forwarded_total":               viaFollowers,
		"watchdog_is_leader":                                       1,
		"watchdog_incidents_opened_total":                          1,
		"watchdog_action_attempts_total{kind=exec,outcome=done}":   1,
		"watchdog_action_attempts_total{kind=log,outcome=done}":    1,
		"watchdog_action_attempts_total{kind=exec,outcome=failed}": 0,
	})
	for id, mfs := range scrapes {
		checkNode(t, id, id == leader.Node.ID(), mfs, up)
	}
	return c, leader, scrapes, true
}

// checkMetrics goes on from measureMetrics: the leader is named, and a
// failover is counted.
func checkMetrics(t *testing.T, c *testCluster, leader *Agent, scrapes map[string]promtest.Families) {
	if v, _ := scrapes[leader.Node.ID()].Value("watchdog_is_leader"); v != 1 {
		t.Errorf("watchdog_is_leader is not 1 on the leader %s", leader.Node.ID())
	}

	// A failover is counted by the survivors, and one of them leads. Raft
	// names the new leader a moment before it tells observers: poll.
	before := scrapes
	c.stop(leader)
	next := c.leader(3)
	var after map[string]promtest.Families
	waitFor(t, 15*time.Second, "the survivors to count the new leader", func() bool {
		after = c.scrapeAll(t)
		for id, mfs := range after {
			was, _ := before[id].Value("watchdog_raft_leader_changes_total")
			if now, _ := mfs.Value("watchdog_raft_leader_changes_total"); now <= was {
				return false
			}
		}
		return true
	})
	if got := sum(after, "watchdog_is_leader"); got != 1 {
		t.Errorf("after failover watchdog_is_leader sums to %v, want 1", got)
	}
	if v, _ := after[next.Node.ID()].Value("watchdog_is_leader"); v != 1 {
		t.Errorf("watchdog_is_leader is not 1 on the new leader %s", next.Node.ID())
	}
}

// checkSums checks metrics summed over the nodes; keys are name{k=v,...}.
func checkSums(t *testing.T, scrapes map[string]promtest.Families, want map[string]float64) {
	t.Helper()
	for key, w := range want {
		name, labels := splitKey(key)
		if got := sum(scrapes, name, labels...); got != w {
			t.Errorf("%s summed over the nodes = %v, want %v", key, got, w)
		}
	}
}

// checkNode checks what every node reports of its own replica and Raft.
func checkNode(t *testing.T, id string, isLeader bool, mfs promtest.Families, up float64) {
	t.Helper()
	for _, c := range []struct {
		status string
		want   float64
	}{{"up", up}, {"down", 1}, {"paused", 0}} {
		if got, ok := mfs.Value("watchdog_services", "status", c.status); !ok || got != c.want {
			t.Errorf("%s: watchdog_services{status=%s} = %v, want %v", id, c.status, got, c.want)
		}
	}
	for _, name := range []string{"watchdog_raft_term", "watchdog_raft_commit_index", "watchdog_raft_applied_index",
		"watchdog_raft_leader_changes_total", "go_goroutines", "process_cpu_seconds_total"} {
		if v, ok := mfs.Value(name); !ok || v <= 0 {
			t.Errorf("%s: %s = %v (present %v), want > 0", id, name, v, ok)
		}
	}
	contact, ok := mfs.Value("watchdog_raft_last_contact_seconds")
	if !ok || contact < 0 || (isLeader && contact != 0) {
		t.Errorf("%s (leader %v): last contact %v s (present %v)", id, isLeader, contact, ok)
	}
	if isLeader {
		for _, cmd := range []string{"heartbeat", "configure", "incidents", "action_result"} {
			if n, _ := mfs.Value("watchdog_raft_apply_duration_seconds", "command", cmd); n < 1 {
				t.Errorf("%s: no %s entry in the apply latency histogram", id, cmd)
			}
		}
	}
}

// splitKey turns "name{k=v,k2=v2}" into the name and its label pairs.
func splitKey(key string) (string, []string) {
	name, rest, ok := strings.Cut(key, "{")
	if !ok {
		return key, nil
	}
	var labels []string
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		k, v, _ := strings.Cut(kv, "=")
		labels = append(labels, k, v)
	}
	return name, labels
}
