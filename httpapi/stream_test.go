package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/httpapi"
)

// nodeNamed serves the API of a real one-node cluster with the given name.
func nodeNamed(t *testing.T, name string) (*httptest.Server, *cluster.Node) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	node, f := httpapi.StartTestNode(t, name, srv.Listener.Addr().String())
	srv.Config.Handler = httpapi.New(node, f, slog.New(slog.DiscardHandler))
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, node
}

// snapshot is a message of GET /v1/stream, as the page reads it: the
// first is a "snapshot" of everything, the others are "delta"s of what
// changed (with the cluster's own facts only when one of them did).
type snapshot struct {
	Event   string `json:"-"`
	Now     time.Time
	Cluster *struct {
		Self, Leader string
		Ready        bool
		Lag          *uint64
		Nodes        []cluster.Member
	}
	Nodes    []struct{ ID string }
	Services []struct{ ID, Status string }
	Removed  []string
}

// stream is an open GET /v1/stream; its messages arrive on events.
type stream struct {
	events chan snapshot
	cancel context.CancelFunc
}

func openStream(t *testing.T, url string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /v1/stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &stream{events: make(chan snapshot, 16), cancel: cancel}
	go func() {
		defer resp.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		event := ""
		for sc.Scan() {
			if e, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				event = e
				continue
			}
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var snap snapshot
			if err := json.Unmarshal([]byte(data), &snap); err != nil {
				t.Errorf("message %q: %v", data, err)
				return
			}
			snap.Event, event = event, ""
			s.events <- snap
		}
	}()
	t.Cleanup(cancel)
	return s
}

// next waits for the next message, or fails the test.
func (s *stream) next(t *testing.T, within time.Duration) snapshot {
	t.Helper()
	select {
	case snap, ok := <-s.events:
		if !ok {
			t.Fatal("stream ended")
		}
		return snap
	case <-time.After(within):
		t.Fatalf("no message within %s", within)
	}
	return snapshot{}
}

func statusOf(snap snapshot, id string) string {
	for _, s := range snap.Services {
		if s.ID == id {
			return s.Status
		}
	}
	return ""
}

func TestStreamSnapshotThenChangesOnly(t *testing.T) {
	srv, node, f := singleNode(t)
	do(t, "POST", srv.URL+"/v1/heartbeat/first", "")
	s := openStream(t, srv.URL)
	snap := s.next(t, 10*time.Second)
	if snap.Event != "snapshot" || statusOf(snap, "first") != "up" || snap.Cluster == nil || snap.Cluster.Self != "solo" ||
		snap.Cluster.Leader != "solo" || !snap.Cluster.Ready || snap.Cluster.Lag == nil || len(snap.Cluster.Nodes) != 1 || snap.Now.IsZero() {
		t.Fatalf("first message: %+v", snap)
	}
	// A node may tell the stream it is an entry behind while it applies
	// one: a change, sent, which is over at the next poll.
	for *snap.Cluster.Lag != 0 {
		for snap = s.next(t, 10*time.Second); snap.Cluster == nil; snap = s.next(t, 10*time.Second) {
		}
	}
	// Nothing changes: nothing is sent, though the state is polled every
	// 500 ms. (A stream that sent every poll fails here.)
	select {
	case snap := <-s.events:
		t.Fatalf("a message with nothing changed: %+v", snap)
	case <-time.After(1500 * time.Millisecond):
	}
	// Each change is a delta of the services that changed, alone.
	do(t, "POST", srv.URL+"/v1/heartbeat/second", "")
	if snap := s.next(t, 10*time.Second); snap.Event != "delta" || len(snap.Services) != 1 || statusOf(snap, "second") != "up" {
		t.Fatalf("after a new service: %+v", snap)
	}
	goDown(t, node, f, "first")
	if snap := s.next(t, 10*time.Second); snap.Event != "delta" || len(snap.Services) != 1 || statusOf(snap, "first") != "down" {
		t.Fatalf("after an incident: %+v", snap)
	}
	do(t, "DELETE", srv.URL+"/v1/services/second", "")
	if snap := s.next(t, 10*time.Second); snap.Event != "delta" || len(snap.Services) != 0 ||
		len(snap.Removed) != 1 || snap.Removed[0] != "second" {
		t.Fatalf("after a deletion: %+v", snap)
	}
}

// Stopping a node must not wait for the dashboards open on it: Shutdown
// ends their streams, and returns well before its deadline.
func TestStreamEndsOnShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	node, f := httpapi.StartTestNode(t, "solo", ln.Addr().String())
	hs := &http.Server{Handler: httpapi.New(node, f, slog.New(slog.DiscardHandler))}
	go hs.Serve(ln)
	s := openStream(t, "http://"+ln.Addr().String())
	s.next(t, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a stream open: %v", err)
	}
	select {
	case _, ok := <-s.events:
		if ok {
			t.Fatal("a message after shutdown")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream still open after shutdown")
	}
}

// A client that goes away ends its stream: the connection is closed on
// the server's side, which happens only once the handler has returned.
func TestStreamEndsWhenClientLeaves(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	node, f := httpapi.StartTestNode(t, "solo", srv.Listener.Addr().String())
	srv.Config.Handler = httpapi.New(node, f, slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	closed := 0
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			mu.Lock()
			closed++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	s := openStream(t, srv.URL)
	s.next(t, 10*time.Second)
	s.cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := closed
		mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the server still holds the stream of a client that left")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A stream with a request body is refused: net/http would not notice the
// client leave until the body was read to its end, so the stream would hold
// one of the node's stream slots after its client had gone.
func TestStreamRefusesABody(t *testing.T) {
	srv, _, _ := singleNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/stream", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req) // the status comes first: a stream would not end
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("GET /v1/stream with a body: %s", resp.Status)
	}
}
