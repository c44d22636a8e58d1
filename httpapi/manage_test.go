package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/httpapi"
)

type apiNode struct {
	srv  *httptest.Server
	node *cluster.Node
	fsm  *fsm.FSM
	led  <-chan struct{} // closed once it has established leadership
}

// startNode serves the API of a real node that bootstraps once expect nodes
// have found each other through join.
func startNode(t *testing.T, id string, expect int, join []string, opts ...httpapi.Option) apiNode {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	f := fsm.New()
	node, err := cluster.New(cluster.Config{NodeID: id, RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		HTTPAddr: srv.Listener.Addr().String(), DataDir: t.TempDir(), Join: join, BootstrapExpect: expect, FSM: f})
	if err != nil {
		t.Fatal(err)
	}
	led := leading(node)
	srv.Config.Handler = httpapi.New(node, f, slog.New(slog.DiscardHandler), opts...)
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		node.Close()
	})
	return apiNode{srv: srv, node: node, fsm: f, led: led}
}

// threeNodes starts a real three-node cluster and returns its leader and
// followers once every node knows the leader's HTTP address.
func threeNodes(t *testing.T, opts ...httpapi.Option) (leader apiNode, followers []apiNode) {
	t.Helper()
	first := startNode(t, "n1", 3, nil, opts...)
	nodes := []apiNode{first,
		startNode(t, "n2", 3, []string{first.node.GossipAddr()}, opts...),
		startNode(t, "n3", 3, []string{first.node.GossipAddr()}, opts...)}
	poll(t, 15*time.Second, "a leader every node can reach", func() bool {
		followers = followers[:0]
		var found bool
		for _, n := range nodes {
			id, addr := n.node.Leader()
			if id == "" || addr == "" {
				return false
			}
			if n.node.IsLeader() {
				leader, found = n, true
			} else {
				followers = append(followers, n)
			}
		}
		return found && len(followers) == 2
	})
	select {
	case <-leader.led:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never established its leadership", leader.node.ID())
	}
	return leader, followers
}

func poll(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func serviceStatus(t *testing.T, body []byte) string {
	t.Helper()
	var v struct {
		Status       string
		NextDeadline *time.Time `json:"next_deadline"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("service view %q: %v", body, err)
	}
	if v.Status == "paused" && v.NextDeadline != nil {
		t.Fatalf("a paused service has a deadline: %s", body)
	}
	return v.Status
}

func wantUnavailable(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	var e struct{ Error string }
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" ||
		json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Fatalf("got %d Retry-After %q %s, want 503, Retry-After: 1 and a JSON error",
			resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

func TestPauseAndResume(t *testing.T) {
	srv, node, f := singleNode(t)
	if resp, body := do(t, "POST", srv.URL+"/v1/heartbeat/nightly", ""); resp.StatusCode != 200 {
		t.Fatalf("heartbeat: %d %s", resp.StatusCode, body)
	}
	before, _ := f.Service("nightly")
	resp, body := do(t, "POST", srv.URL+"/v1/services/nightly/pause", "")
	if resp.StatusCode != 200 || serviceStatus(t, body) != "paused" {
		t.Fatalf("pause: %d %s", resp.StatusCode, body)
	}
	if s, _ := f.Service("nightly"); s.Status != fsm.StatusPaused {
		t.Fatalf("pause answered 200 but the committed status is %s", s.Status)
	}
	// Pausing again changes nothing and still answers with the service.
	if resp, body := do(t, "POST", srv.URL+"/v1/services/nightly/pause", ""); resp.StatusCode != 200 || serviceStatus(t, body) != "paused" {
		t.Fatalf("second pause: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "POST", srv.URL+"/v1/services/nightly/resume", "")
	if resp.StatusCode != 200 || serviceStatus(t, body) != "up" {
		t.Fatalf("resume: %d %s", resp.StatusCode, body)
	}
	after, _ := f.Service("nightly")
	if after.Status != fsm.StatusUp || after.LastSeen <= before.LastSeen {
		t.Fatalf("after resume: status %s, last seen %d (was %d): the timeout must restart", after.Status, after.LastSeen, before.LastSeen)
	}

	for _, c := range []struct {
		name, method, path string
		status             int
	}{
		{"unknown service", "POST", "/v1/services/nobody/pause", 404},
		{"unknown service resume", "POST", "/v1/services/nobody/resume", 404},
		{"resume what is not paused", "POST", "/v1/services/nightly/resume", 409},
		{"bad id", "POST", "/v1/services/../pause", 400},
		{"shell id", "POST", "/v1/services/%3Brm/resume", 400},
		{"wrong method", "GET", "/v1/services/nightly/pause", 405},
	} {
		t.Run(c.name, func(t *testing.T) {
			applied := logIndex(t, node)
			resp, body := do(t, c.method, srv.URL+c.path, "")
			var e struct{ Error string }
			if resp.StatusCode != c.status || json.Unmarshal(body, &e) != nil || e.Error == "" {
				t.Fatalf("got %d %s, want %d and a JSON error", resp.StatusCode, body, c.status)
			}
			if logIndex(t, node) != applied {
				t.Fatal("a refused request reached the Raft log")
			}
		})
	}
}

func TestWritesOnAFollowerAreForwardedToTheLeader(t *testing.T) {
	leader, followers := threeNodes(t)
	if resp, body := do(t, "POST", followers[0].srv.URL+"/v1/heartbeat/batch", ""); resp.StatusCode != 200 {
		t.Fatalf("heartbeat: %d %s", resp.StatusCode, body)
	}
	resp, body := do(t, "POST", followers[0].srv.URL+"/v1/services/batch/pause", "")
	if resp.StatusCode != 200 || serviceStatus(t, body) != "paused" {
		t.Fatalf("pause via follower: %d %s", resp.StatusCode, body)
	}
	// 200 means committed: the leader has applied it, and it replicates.
	if s, _ := leader.fsm.Service("batch"); s.Status != fsm.StatusPaused {
		t.Fatalf("pause answered 200 but the leader has %s", s.Status)
	}
	for _, f := range followers {
		poll(t, 5*time.Second, "the pause on "+f.node.ID(), func() bool {
			s, _ := f.fsm.Service("batch")
			return s.Status == fsm.StatusPaused
		})
	}
	if resp, body := do(t, "POST", followers[1].srv.URL+"/v1/services/nobody/resume", ""); resp.StatusCode != 404 {
		t.Fatalf("unknown service via follower: %d %s, want the leader's 404", resp.StatusCode, body)
	}

	// A request that was forwarded once and still lands on a follower is
	// refused, not sent on: one hop, never a loop.
	applied := logIndex(t, leader.node)
	req, err := http.NewRequest("POST", followers[1].srv.URL+"/v1/services/batch/resume", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(cluster.ForwardedByHeader, "n-elsewhere")
	resp, body = send(t, req)
	wantUnavailable(t, resp, body)
	if s, _ := leader.fsm.Service("batch"); s.Status != fsm.StatusPaused || logIndex(t, leader.node) != applied {
		t.Fatalf("a refused forwarded request changed the state: %s", s.Status)
	}

	// A follower that cannot reach the leader's HTTP API says so quickly.
	leader.srv.Close()
	resp, body = do(t, "POST", followers[0].srv.URL+"/v1/services/batch/resume", "")
	wantUnavailable(t, resp, body)
}

func TestWriteWithoutALeaderIsUnavailable(t *testing.T) {
	// Expecting a second server that never comes, this node never elects.
	lone := startNode(t, "lone", 2, nil)
	resp, body := do(t, "POST", lone.srv.URL+"/v1/services/anything/pause", "")
	wantUnavailable(t, resp, body)
	if resp, body := do(t, "POST", lone.srv.URL+"/v1/services/../pause", ""); resp.StatusCode != 400 {
		t.Fatalf("bad id without a leader: %d %s, want 400", resp.StatusCode, body)
	}
}

func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// Every route that finds a service missing says so in the same words, so
// that the CLI's pause, resume, delete and service read alike.
func TestUnknownServiceIsWordedAlike(t *testing.T) {
	srv, _, _ := singleNode(t)
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/services/nope"}, {"GET", "/v1/services/nope/events"}, {"POST", "/v1/services/nope/pause"},
		{"POST", "/v1/services/nope/resume"}, {"DELETE", "/v1/services/nope"},
	} {
		resp, body := do(t, c.method, srv.URL+c.path, "")
		var e struct{ Error string }
		if resp.StatusCode != 404 || json.Unmarshal(body, &e) != nil || e.Error != `no service "nope"` {
			t.Errorf("%s %s: %d %s, want 404 {\"error\": \"no service \\\"nope\\\"\"}", c.method, c.path, resp.StatusCode, body)
		}
	}
}
