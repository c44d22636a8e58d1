package main

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/httpapi"
)

// TestLeaderHealthOnRealCluster: on three real nodes, GET /v1/leader/health
// is 200 on the leader alone and 429 (standby) on the followers; after the
// leader is stopped it is 200 on the new leader alone; a node left without
// a quorum answers 503.
func TestLeaderHealthOnRealCluster(t *testing.T) {
	c := newTestCluster(t, 3, fileConfig(t, ""))
	leader := c.leader(3)
	checkLeaderHealth(t, c, leader)

	c.stop(leader)
	next := c.leader(3)
	checkLeaderHealth(t, c, next)

	c.stop(next)
	alone := c.running()[0]
	waitFor(t, 15*time.Second, "the node without a quorum to answer 503", func() bool {
		code, _ := leaderHealth(t, alone)
		return code == http.StatusServiceUnavailable
	})
}

// checkLeaderHealth waits until every running node answers as it should
// with leader as the leader: health checks poll, they need not agree at
// once.
func checkLeaderHealth(t *testing.T, c *testCluster, leader *Agent) {
	t.Helper()
	waitFor(t, 10*time.Second, leader.Node.ID()+" alone to answer 200", func() bool {
		for _, a := range c.running() {
			code, body := leaderHealth(t, a)
			want, status := http.StatusTooManyRequests, "standby"
			if a == leader {
				want, status = http.StatusOK, "leader"
			}
			if code != want || body["status"] != status || body["leader"] != leader.Node.ID() || body["node"] != a.Node.ID() {
				return false
			}
		}
		return true
	})
}

func leaderHealth(t *testing.T, a *Agent) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(a.URL() + httpapi.LeaderHealthPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]string
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s from %s: %v in %q", httpapi.LeaderHealthPath, a.Node.ID(), err, b)
	}
	return resp.StatusCode, body
}
