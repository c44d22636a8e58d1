package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/httpapi"
)

// singleNode serves the API of a real one-node cluster.
func singleNode(t testing.TB, opts ...httpapi.Option) (*httptest.Server, *cluster.Node, *fsm.FSM) {
	t.Helper()
	return singleNodeTuned(t, func(*cluster.Config) {}, opts...)
}

// singleNodeTuned is singleNode with tune applied to the node's config.
func singleNodeTuned(t testing.TB, tune func(*cluster.Config), opts ...httpapi.Option) (*httptest.Server, *cluster.Node, *fsm.FSM) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	f := fsm.New()
	cfg := cluster.Config{NodeID: "solo", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		HTTPAddr: srv.Listener.Addr().String(), DataDir: t.TempDir(), BootstrapExpect: 1, FSM: f}
	tune(&cfg)
	node, err := cluster.New(cfg)
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
	deadline := time.Now().Add(10 * time.Second)
	for node.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("single node never ready: %v", node.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-led:
	case <-time.After(10 * time.Second):
		t.Fatal("single node never established its leadership")
	}
	return srv, node, f
}

// logIndex is the index of the last entry in node's log. A refused request
// must leave it alone. (Not the applied index: Raft moves that only after
// the FSM has answered the request, so a test could read it too early.)
func logIndex(t *testing.T, node *cluster.Node) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(node.Stats()["last_log_index"], 10, 64)
	if err != nil {
		t.Fatalf("last_log_index: %v", err)
	}
	return n
}

// leading starts node with a duty that says when its leadership is
// established: the entries every new leader commits (its no-op and its
// barrier) are then applied, so from then on the applied index moves only
// with what the test commits, and "nothing reached the log" can be checked.
func leading(node *cluster.Node) <-chan struct{} {
	led := make(chan struct{})
	var once sync.Once
	node.Start(func(context.Context, time.Time) { once.Do(func() { close(led) }) })
	return led
}

func do(t *testing.T, method, url, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestHeartbeatForms(t *testing.T) {
	srv, _, f := singleNode(t)
	for _, c := range []struct{ method, path, id string }{
		{"GET", "/heartbeat?id=get-1", "get-1"},
		{"POST", "/heartbeat?id=post-1", "post-1"},
		{"HEAD", "/heartbeat?id=head-1", "head-1"},
		{"POST", "/v1/heartbeat/path_1.x", "path_1.x"},
	} {
		resp, body := do(t, c.method, srv.URL+c.path, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
		}
		if _, ok := f.Service(c.id); !ok {
			t.Fatalf("%s %s answered 200 but %q is not committed", c.method, c.path, c.id)
		}
		var reply struct{ ID, Status string }
		if c.method != "HEAD" && (json.Unmarshal(body, &reply) != nil || reply.ID != c.id || reply.Status != "committed" ||
			resp.Header.Get("Content-Type") != "application/json") {
			t.Fatalf("%s %s answered %q (%s)", c.method, c.path, body, resp.Header.Get("Content-Type"))
		}
	}
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	srv, node, f := singleNode(t)
	if resp, _ := do(t, "POST", srv.URL+"/v1/heartbeat/known", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("setup heartbeat: %d", resp.StatusCode)
	}
	long := strings.Repeat("a", 129)
	testBadInputTable(t, srv, node, f, []badInputCase{
		{"missing id", "GET", "/heartbeat", "", 400},
		{"empty id", "GET", "/heartbeat?id=", "", 400},
		{"dot dot", "GET", "/heartbeat?id=..", "", 400},
		{"dot", "POST", "/v1/heartbeat/.", "", 400},
		{"space", "GET", "/heartbeat?id=a%20b", "", 400},
		{"slash", "GET", "/heartbeat?id=a/b", "", 400},
		{"shell", "POST", "/heartbeat?id=%3Brm%20-rf", "", 400},
		{"too long", "POST", "/v1/heartbeat/" + long, "", 400},
		{"unicode", "POST", "/v1/heartbeat/%C3%A9t%C3%A9", "", 400},
		{"empty path id", "POST", "/v1/heartbeat/", "", 400},
		{"wrong method", "GET", "/v1/heartbeat/known", "", 405},
		{"delete", "DELETE", "/heartbeat?id=known", "", 405},
		{"unknown route", "GET", "/v2/whatever", "", 404},
		{"unknown service", "GET", "/v1/services/nobody", "", 404},
		{"bad service id", "GET", "/v1/services/..", "", 400},
		{"forward bad id", "POST", cluster.ForwardPath, "ok\nnot ok", 400},
		{"forward nothing", "POST", cluster.ForwardPath, "", 400},
		{"forward over batch_size", "POST", cluster.ForwardPath, strings.Repeat("a\n", cluster.DefaultMaxBatch+1), 413},
	})
	// An oversized body is refused before it is read, and the connection
	// closed: a client still writing it may see a reset before the answer,
	// so these read the answer while the body is unfinished.
	overCap := strings.Repeat("a", 129*cluster.DefaultMaxBatch+1)
	for name, wire := range map[string]string{
		"oversized body": "POST /v1/heartbeat/known HTTP/1.1\r\nHost: w\r\nContent-Length: 1048576\r\n\r\n" + strings.Repeat("x", 1<<20),
		"forward over the byte cap": "POST " + cluster.ForwardPath + " HTTP/1.1\r\nHost: w\r\n" + peerHeader(node) +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(overCap)) + overCap,
	} {
		t.Run(name, func(t *testing.T) { refusedWhole(t, srv.URL, wire, node, f) })
	}
}

// refusedWhole sends wire and wants a 413 with a JSON error that changed
// nothing.
func refusedWhole(t *testing.T, base, wire string, node *cluster.Node, f *fsm.FSM) {
	t.Helper()
	before, applied := f.Services(), logIndex(t, node)
	resp, body := sendWhileReading(t, base, wire)
	var e struct{ Error string }
	if resp.StatusCode != http.StatusRequestEntityTooLarge || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
		t.Fatalf("%d %q, want 413 and a JSON error", resp.StatusCode, body)
	}
	if logIndex(t, node) != applied || len(f.Services()) != len(before) {
		t.Fatal("a refused request reached the Raft log")
	}
}

// badInputCase is a request the API must refuse with status, changing nothing.
type badInputCase struct {
	name, method, path, body string
	status                   int
}

// testBadInputTable sends each case and wants its status with a JSON error,
// and nothing committed.
func testBadInputTable(t *testing.T, srv *httptest.Server, node *cluster.Node, f *fsm.FSM, cases []badInputCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, applied := f.Services(), logIndex(t, node)
			resp, body := beat(t, node, c.method, srv.URL+c.path, c.body, "")
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, c.status, body)
			}
			var e struct{ Error string }
			if json.Unmarshal(body, &e) != nil || e.Error == "" {
				t.Fatalf("body %q is not a JSON error", body)
			}
			if logIndex(t, node) != applied || len(f.Services()) != len(before) {
				t.Fatal("a refused request reached the Raft log")
			}
		})
	}
}

func TestReadAPI(t *testing.T) {
	srv, _, _ := singleNode(t)
	do(t, "POST", srv.URL+"/v1/heartbeat/reader", "")
	resp, body := do(t, "GET", srv.URL+"/v1/services/reader", "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET service: %d %s", resp.StatusCode, body)
	}
	var s map[string]any
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	if s["id"] != "reader" || s["status"] != "up" || s["timeout"] != "10s" || s["incident"] != nil {
		t.Fatalf("service = %s", body)
	}
	if _, err := time.Parse(time.RFC3339, s["last_seen"].(string)); err != nil || !strings.HasSuffix(s["last_seen"].(string), "Z") {
		t.Fatalf("last_seen %v is not RFC 3339 UTC", s["last_seen"])
	}
	_, body = do(t, "GET", srv.URL+"/v1/services", "")
	if !strings.Contains(string(body), `"id":"reader"`) {
		t.Fatalf("list = %s", body)
	}
	var cl struct {
		Leader string
		Nodes  []cluster.Member
	}
	_, body = do(t, "GET", srv.URL+"/v1/cluster", "")
	if err := json.Unmarshal(body, &cl); err != nil || cl.Leader != "solo" || len(cl.Nodes) != 1 || !cl.Nodes[0].Voter || !cl.Nodes[0].Alive {
		t.Fatalf("cluster = %s", body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp, body := do(t, "GET", srv.URL+p, ""); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
}
