package main

import (
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// call sends a request with an optional bearer token and returns the status and body.
func call(t *testing.T, method, url, body, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *testCluster) someFollower() *Agent {
	for _, a := range c.running() {
		if !a.Node.IsLeader() {
			return a
		}
	}
	c.t.Fatal("no follower")
	return nil
}

// TestManagedServicesThroughAFollower drives the management API through a
// follower of a real cluster whose config file sets both tokens: heartbeats
// forwarded to the leader carry the ping token, writes carry the API token,
// and what the API defines replicates, with its bounded history, to a node
// that catches up from a snapshot.
func TestManagedServicesThroughAFollower(t *testing.T) {
	argv, _ := recorder(t)
	file := fileConfig(t, fmt.Sprintf(`
api_token: s3cret
ping_token: p1ng
history_per_service: 3
defaults: {timeout: 1h}
actions:
  record: {exec: [%q]}
services:
  from-file: {timeout: 1h, actions: [record]}
`, argv[0]))
	small := func(cc *cluster.Config) { cc.TrailingLogs = 5; cc.SnapshotThreshold = 5 }
	c := newTestCluster(t, 3, file, small)
	leader := c.leader(3)
	base := "http://" + c.someFollower().Addr

	if code, body := call(t, "POST", base+"/v1/heartbeat/beater", "", ""); code != 401 {
		t.Fatalf("heartbeat without the ping token: %d %s", code, body)
	}
	if code, body := call(t, "POST", base+"/v1/heartbeat/beater", "", "p1ng"); code != 200 {
		t.Fatalf("heartbeat with the ping token, forwarded to the leader: %d %s", code, body)
	}
	if code, body := call(t, "POST", "http://"+leader.Addr+cluster.ForwardPath, "sneaky", ""); code != 401 {
		t.Fatalf("the forward route without the ping token: %d %s", code, body)
	}
	if _, ok := serviceOn(leader, "sneaky"); ok {
		t.Fatal("a heartbeat reached the leader around the ping token")
	}

	put := `{"timeout": "1h", "grace": "1m", "actions": ["record"], "tags": ["batch"]}`
	for _, w := range []struct {
		method, path, body, token string
		want                      int
	}{
		{"PUT", "/v1/services/managed", put, "", 401},
		{"PUT", "/v1/services/managed", put, "p1ng", 401},
		{"PUT", "/v1/services/managed", `{"actions": ["rm -rf /"]}`, "s3cret", 400},
		{"PUT", "/v1/services/from-file", put, "s3cret", 409},
		{"DELETE", "/v1/services/from-file", "", "s3cret", 409},
		{"PUT", "/v1/services/managed", put, "s3cret", 201},
		{"POST", "/v1/services/managed/pause", "", "s3cret", 200},
		{"POST", "/v1/services/managed/resume", "", "s3cret", 200},
		{"POST", "/v1/services/managed/pause", "", "s3cret", 200},
		{"POST", "/v1/services/managed/resume", "", "s3cret", 200},
	} {
		if code, body := call(t, w.method, base+w.path, w.body, w.token); code != w.want {
			t.Fatalf("%s %s (token %q): %d %s, want %d", w.method, w.path, w.token, code, body, w.want)
		}
	}
	if s, _ := serviceOn(leader, "from-file"); s.Source != fsm.SourceConfig || s.Def.Timeout != time.Hour || s.Def.Grace != 0 {
		t.Fatalf("the config file's service changed: %+v", s.Def)
	}
	want, _ := leader.FSM.Events("managed", 0)
	if len(want) != 3 || want[2].Event != fsm.EventResumed {
		t.Fatalf("managed's history on the leader: %+v, want the last 3 events", want)
	}

	if err := leader.Node.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	late := c.start("n4", 0, t.TempDir(), small)
	c.leader(4)
	waitFor(t, 10*time.Second, "n4 to catch up", func() bool { _, ok := serviceOn(late, "managed"); return ok })
	if idx := late.Node.Stats()["last_snapshot_index"]; idx == "0" {
		t.Fatalf("n4 caught up without a snapshot (last_snapshot_index %s)", idx)
	}
	s, _ := serviceOn(late, "managed")
	got, _ := late.FSM.Events("managed", 0)
	if s.Source != fsm.SourceAPI || s.Def.Grace != time.Minute || !reflect.DeepEqual(got, want) {
		t.Fatalf("n4 has %+v with history %+v, want the leader's %+v", s.Def, got, want)
	}

	if code, body := call(t, "DELETE", base+"/v1/services/managed", "", "s3cret"); code != 200 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	for _, a := range c.running() {
		waitFor(t, 5*time.Second, "the delete on "+a.Node.ID(), func() bool { _, ok := serviceOn(a, "managed"); return !ok })
	}
}
