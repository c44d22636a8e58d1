package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// A suppressed incident stays suppressed across a failover, and the new
// leader runs its down action, once, when the dependency recovers.
func TestSuppressionSurvivesAFailover(t *testing.T) {
	argv, actions := recorder(t)
	file := fileConfig(t, fmt.Sprintf(`
check_interval: 100ms
defaults: {timeout: 1s, actions: [record]}
actions:
  record: {exec: [%q]}
services:
  db: {timeout: 1s, actions: [record], on_recovered: [record]}
  app: {timeout: 3s, actions: [record], depends_on: [db]}
`, argv[0]))
	c := newTestCluster(t, 3, file)
	old := c.leader(3)
	waitFor(t, 20*time.Second, "app's incident, suppressed by db, on every node", func() bool {
		for _, a := range c.running() {
			s, _ := serviceOn(a, "app")
			if cur := s.Current(); cur == nil || cur.SuppressedBy != "db" {
				return false
			}
		}
		return true
	})
	waitFor(t, 10*time.Second, "db's down action", func() bool { return countPrefix(actions(), "down_db_") == 1 })
	c.stop(old)
	leader := c.leader(3)
	// A whole check interval and more under the new leader: still nothing
	// for app (proveWatching-style: a probe service shows it is watching).
	proveWatching(t, leader, actions, "probe")
	if n := countPrefix(actions(), "down_app_"); n != 0 {
		t.Fatalf("app's down action ran while db was down: %q", actions())
	}
	via := c.running()[0]
	if code := heartbeat(t, via, "db"); code != http.StatusOK {
		t.Fatalf("heartbeat db: %d", code)
	}
	waitFor(t, 10*time.Second, "app's down action once db recovered", func() bool { return countPrefix(actions(), "down_app_") == 1 })
	for _, a := range c.running() {
		waitFor(t, 10*time.Second, "app released on "+a.Node.ID(), func() bool {
			s, _ := serviceOn(a, "app")
			cur := s.Current()
			return cur != nil && cur.Released != 0 && cur.Resolved == 0
		})
	}
	body := getBody(t, "http://"+via.Addr+"/v1/services/app")
	var v struct {
		Incident struct {
			SuppressedBy string  `json:"suppressed_by"`
			Released     *string `json:"released"`
		} `json:"incident"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Incident.SuppressedBy != "db" || v.Incident.Released == nil {
		t.Fatalf("GET /v1/services/app: %s", body)
	}
	t.Logf("GET /v1/services/app:\n%s", body)
	t.Logf("GET /v1/services/app/events:\n%s", getBody(t, "http://"+via.Addr+"/v1/services/app/events"))
	proveWatching(t, leader, actions, "probe2")
	if n := countPrefix(actions(), "down_app_"); n != 1 {
		t.Fatalf("app's down action ran %d times: %q", n, actions())
	}
}

func countPrefix(lines []string, prefix string) int {
	return len(slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return !strings.HasPrefix(l, prefix) }))
}

func getBody(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}
