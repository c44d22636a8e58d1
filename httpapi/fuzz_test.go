package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/httpapi"
)

// FuzzHTTPHandlers sends requests of any method, path, query string and
// body to the API of a real one-node cluster, and checks what every client
// is promised: an error is JSON {"error": ...}, the only 5xx is 503 (retry,
// here or elsewhere), and a request refused with a 4xx changed nothing (it
// reached no commit, and the Raft log did not move). Run it with
//
//	go test -run '^$' -fuzz '^FuzzHTTPHandlers$' -fuzztime 20s ./httpapi
//
// Fuzzed ids must reach nothing but validation: the node is wrapped so that
// only the fixture's services are ever committed, and any id that reaches
// the node without being valid fails the test. A valid id that would be
// committed is refused there instead, which the API must answer with 503.
func FuzzHTTPHandlers(f *testing.F) {
	for _, r := range readmeRoutes(f) {
		f.Add(r.method, r.path, r.query, []byte(nil))
	}
	for _, s := range []struct {
		method, path, query string
		body                []byte
	}{
		{"GET", "/heartbeat", "id=" + idKnown1, nil},
		{"HEAD", "/heartbeat", "id=new-service", nil},
		{"POST", "/heartbeat", "id=..&id=x", []byte("ignored")},
		{"POST", "/v1/heartbeat/" + idKnown2, "", nil},
		{"POST", "/v1/heartbeat/%C3%A9t%C3%A9", "", nil},
		{"POST", "/v1/heartbeat/" + strings.Repeat("a", 129), "", nil},
		{"POST", "/v1/heartbeat/" + idKnown1, "", bytes.Repeat([]byte("x"), 64<<10+1)},
		{"POST", cluster.ForwardPath, "", []byte(idKnown1 + "\n" + idKnown2 + "\n")},
		{"POST", cluster.ForwardPath, "", []byte("ok\nnot ok")},
		{"POST", "/v1/services/" + idPaused + "/resume", "", nil},
		{"POST", "/v1/services/" + idPaused + "/pause", "", []byte("{}")},
		{"POST", "/v1/services/nobody/pause", "", nil},
		{"GET", "/v1/services/..", "", nil},
		{"GET", "/metrics", "", nil},
		{"PUT", "/v1/services/" + idKnown2, "", []byte(`{"timeout": "3s", "actions": ["log"], "repeat": "1m", "max_repeats": 2, "tags": ["db"]}`)},
		{"PUT", "/v1/services/new-service", "", []byte(`{"timeout": "1h", "flap_threshold": 3, "flap_window": "10m"}`)},
		{"PUT", "/v1/services/" + idKnown1, "", []byte(`{"timeout": 5}`)},
		{"DELETE", "/v1/services/" + idKnown1, "", nil},
		{"GET", "/v1/services/" + idKnown1 + "/events", "since=2026-01-01T00:00:00Z", nil},
		{"GET", "/v1/events", "after=3&limit=2", nil},
		{"DELETE", "/heartbeat", "id=" + idKnown1, nil},
		{"GET", "/v2/whatever", "", nil},
		{"POST", "/v1/cluster/leave", "force=true", nil},
		{"DELETE", "/v1/cluster/members/solo", "", nil},
		{"GET", "/static/..%2f..%2fgo.mod", "", nil},
	} {
		f.Add(s.method, s.path, s.query, s.body)
	}
	// One cluster per fuzzing process, started before the inputs run.
	fx := &fixture{dir: f.TempDir()}
	fx.start(f)
	f.Cleanup(fx.close)
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte) {
		req := parseRequest(method, path, query, body)
		if req == nil {
			t.Skip("not a request an HTTP server would pass on")
		}
		// Long enough for a commit; it also ends event streams, which
		// would otherwise run until the client goes away.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req = req.WithContext(ctx)

		fx.guard.reset()
		last := fx.lastIndex(t)
		rec := httptest.NewRecorder()
		fx.handler.ServeHTTP(rec, req)
		resp := rec.Result()
		what := fmt.Sprintf("%s %s (body %d bytes) answered %d %q", req.Method, req.RequestURI, len(body), resp.StatusCode, rec.Body.Bytes())

		if v := fx.guard.violations(); len(v) > 0 {
			t.Fatalf("%s, and %s", what, strings.Join(v, "; "))
		}
		switch code := resp.StatusCode; {
		case code >= 500 && code != http.StatusServiceUnavailable:
			t.Fatalf("%s: a 5xx other than 503", what)
		case code >= 400:
			var e struct{ Error string }
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("%s with Content-Type %q: want a JSON error", what, ct)
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%s: want a JSON body with a non-empty error (%v)", what, err)
			}
		}
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			if c := fx.guard.commits(); len(c) > 0 {
				t.Fatalf("%s, a refusal, after proposing %v", what, c)
			}
			if now := fx.lastIndex(t); now != last {
				t.Fatalf("%s, a refusal, but the Raft log grew from %d to %d", what, last, now)
			}
		}
		if err := fx.healthy(); err != nil {
			if resp.StatusCode >= 400 && resp.StatusCode < 500 {
				t.Fatalf("%s, a refusal, but afterwards the node is not healthy: %v", what, err)
			}
			// A management request that succeeded may legitimately take
			// the node out of service (leaving the cluster, say): start
			// afresh for the next input.
			fx.close()
			fx.start(t)
		}
	})
}

// The services the fixture commits, the only ones the guard lets through
// to the cluster.
const (
	idKnown1 = "known-1"
	idKnown2 = "known-2"
	idPaused = "paused-1" // paused by the fixture
)

func isFixture(id string) bool { return id == idKnown1 || id == idKnown2 || id == idPaused }

// fixture is a one-node cluster and its API.
type fixture struct {
	dir     string // data dirs go here: F's own helpers cannot run inside the fuzz function
	node    *cluster.Node
	guard   *guardNode
	handler http.Handler
}

func (fx *fixture) start(f testing.TB) {
	f.Helper()
	dataDir, err := os.MkdirTemp(fx.dir, "node")
	if err != nil {
		f.Fatal(err)
	}
	state := fsm.New()
	node, err := cluster.New(cluster.Config{NodeID: "solo", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:1", DataDir: dataDir, BootstrapExpect: 1, FSM: state})
	if err != nil {
		f.Fatal(err)
	}
	// The leader's duty starts after its no-op and barrier are applied:
	// from then on the log grows only with what the inputs commit.
	led := make(chan struct{})
	var once sync.Once
	node.Start(func(context.Context, time.Time) { once.Do(func() { close(led) }) })
	fx.node = node
	select {
	case <-led:
	case <-time.After(15 * time.Second):
		f.Fatalf("the node never established its leadership: %v", fx.healthy())
	}
	deadline := time.Now().Add(15 * time.Second)
	for fx.healthy() != nil {
		if time.Now().After(deadline) {
			f.Fatalf("the node never became ready: %v", fx.healthy())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Heartbeat(ctx, idKnown1, idKnown2, idPaused); err != nil {
		f.Fatal(err)
	}
	if _, err := node.Apply(ctx, fsm.Pause{At: time.Now().UnixNano(), Service: idPaused, Paused: true}); err != nil {
		f.Fatal(err)
	}
	fx.guard = &guardNode{Node: node}
	// No tokens: every route is open, as it is by default, so inputs
	// reach the handlers rather than stopping at a 401.
	fx.handler = httpapi.New(fx.guard, state, slog.New(slog.DiscardHandler),
		httpapi.WithMetrics(prometheus.NewRegistry()), httpapi.WithActions([]string{"log", "page"}))
}

func (fx *fixture) close() {
	if fx.node != nil {
		fx.node.Close()
		fx.node = nil
	}
}

// lastIndex is the index of the last entry in the node's log, which moves
// before a request is answered (the applied index may move just after).
func (fx *fixture) lastIndex(t testing.TB) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(fx.node.Stats()["last_log_index"], 10, 64)
	if err != nil {
		t.Fatalf("last_log_index: %v", err)
	}
	return n
}

// healthy reports why the node could not serve the next input as the
// first: it must still lead its cluster of one and be ready.
func (fx *fixture) healthy() error {
	if !fx.node.IsLeader() {
		return errors.New("not the leader")
	}
	return fx.node.Ready()
}

// errNotCommitted is what the guard answers for what it keeps from the
// cluster: any error of a commit must reach the client as a 503.
var errNotCommitted = errors.New("fuzz: kept from the cluster: only the fixture's services are committed")

// guardNode is the real node, except that commits go through only for the
// fixture's services, and every id that reaches it is checked: the API must
// have validated it. Embedding keeps it a httpapi.Node as that interface
// grows.
type guardNode struct {
	*cluster.Node
	mu       sync.Mutex
	proposed []string
	bad      []string
}

func (g *guardNode) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.proposed, g.bad = nil, nil
}

func (g *guardNode) commits() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.proposed)
}

func (g *guardNode) violations() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.bad)
}

// admit records a proposal about ids and reports whether it may go on.
func (g *guardNode) admit(what string, ids []string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.proposed = append(g.proposed, fmt.Sprintf("%s %q", what, ids))
	ok := len(ids) > 0
	for _, id := range ids {
		if !fsm.ValidID(id) {
			g.bad = append(g.bad, fmt.Sprintf("the invalid id %q reached %s", id, what))
		}
		ok = ok && isFixture(id)
	}
	return ok
}

func (g *guardNode) HeartbeatID(ctx context.Context, id string) error {
	if !g.admit("HeartbeatID", []string{id}) {
		return errNotCommitted
	}
	return g.Node.HeartbeatID(ctx, id)
}

func (g *guardNode) CommitHeartbeats(ctx context.Context, ids []string) error {
	if !g.admit("CommitHeartbeats", ids) {
		return errNotCommitted
	}
	return g.Node.CommitHeartbeats(ctx, ids)
}

func (g *guardNode) Apply(ctx context.Context, c fsm.Command) (any, error) {
	if !g.admit(fmt.Sprintf("Apply(%T)", c), commandIDs(c)) {
		return nil, errNotCommitted
	}
	return g.Node.Apply(ctx, c)
}

// commandIDs finds the service ids a command names, whatever its kind: its
// Service and IDs fields, and those of the items it lists.
func commandIDs(c fsm.Command) []string {
	var ids []string
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				switch name := v.Type().Field(i).Name; {
				case name == "Service" && v.Field(i).Kind() == reflect.String:
					ids = append(ids, v.Field(i).String())
				case name == "IDs":
					ids = append(ids, v.Field(i).Interface().([]string)...)
				default:
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			for _, k := range v.MapKeys() {
				if k.Kind() == reflect.String {
					ids = append(ids, k.String())
				}
			}
		}
	}
	walk(reflect.ValueOf(c))
	return ids
}

// parseRequest reads the request as net/http's server would, or returns nil
// where the server would refuse it before any handler saw it.
func parseRequest(method, path, query string, body []byte) *http.Request {
	target := path
	if !strings.HasPrefix(target, "/") {
		target = "/" + target
	}
	if query != "" {
		target += "?" + query
	}
	raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: watchdog\r\nContent-Length: %d\r\n\r\n", method, target, len(body))
	req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(raw), bytes.NewReader(body))))
	if err != nil {
		return nil
	}
	req.RemoteAddr = "192.0.2.7:40000"
	return req
}

type route struct{ method, path, query string }

// readmeRoutes are the routes the documentation (README.md and docs/*.md)
// names, with the fixture's ids for their placeholders: read at run time,
// so that a route added to the documentation is fuzzed from then on.
func readmeRoutes(f testing.TB) []route {
	docs, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		f.Fatal(err)
	}
	var text []byte
	for _, name := range append([]string{filepath.Join("..", "README.md")}, docs...) {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		text = append(text, b...)
	}
	placeholder := regexp.MustCompile(`\{[a-z]+\}|\bID\b|\bFILE\b`)
	var out []route
	for _, m := range regexp.MustCompile("`([A-Z]+(?:`/`[A-Z]+)*) (/[^`\\s]*)`").FindAllSubmatch(text, -1) {
		target := placeholder.ReplaceAllString(string(m[2]), idKnown1)
		path, query, _ := strings.Cut(target, "?")
		for _, method := range strings.Split(string(m[1]), "`/`") {
			out = append(out, route{method, path, query})
		}
	}
	if len(out) == 0 {
		f.Fatal("found no route in README.md or docs/*.md")
	}
	return out
}
