package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/watchdog-ha/watchdog/client"
)

// The examples run against fakeNode, a stand-in for a watchdog node that
// answers the few routes they use the way a node does, so that they run in
// `go test` without a cluster. Against a real cluster, give New the nodes'
// addresses instead, such as
// []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"}.
type fakeNode struct {
	mu     sync.Mutex
	status map[string]string
	beats  map[string]int
}

func newFakeNode() (*fakeNode, *httptest.Server) {
	n := &fakeNode{status: map[string]string{}, beats: map[string]int{}}
	return n, httptest.NewServer(n)
}

func (n *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch p := r.URL.Path; {
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/v1/heartbeat/"):
		id := strings.TrimPrefix(p, "/v1/heartbeat/")
		n.status[id] = "up"
		n.beats[id]++
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"committed"}`)
	case strings.HasPrefix(p, "/ping/"):
		id, signal, _ := strings.Cut(strings.TrimPrefix(p, "/ping/"), "/")
		n.status[id] = map[string]string{"": "up", "start": "up", "fail": "down"}[signal]
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "OK")
	case r.Method == http.MethodGet && p == "/v1/services":
		var list []map[string]any
		for id, st := range n.status {
			list = append(list, map[string]any{"id": id, "status": st, "timeout": "10s", "source": "heartbeat"})
		}
		sort.Slice(list, func(i, j int) bool { return list[i]["id"].(string) < list[j]["id"].(string) })
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"services": list})
	default:
		http.NotFound(w, r)
	}
}

func (n *fakeNode) beatsOf(id string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.beats[id]
}

// Send one heartbeat, then list the services. The first address is down:
// the client moves on to the next.
func ExampleClient_Ping() {
	_, node := newFakeNode()
	defer node.Close()
	c, err := client.New([]string{"127.0.0.1:1", node.URL})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx, "backup-job"); err != nil {
		fmt.Println("ping:", err)
		return
	}
	services, err := c.Services(ctx)
	if err != nil {
		fmt.Println("services:", err)
		return
	}
	for _, s := range services {
		fmt.Println(s.ID, s.Status, s.Timeout)
	}
	// Output: backup-job up 10s
}

// Wrap a job as a healthchecks.io cron wrapper does: start, run, then
// success or failure.
func ExampleClient_Start() {
	_, node := newFakeNode()
	defer node.Close()
	c, _ := client.New([]string{node.URL}, client.WithPingToken("only-if-the-nodes-set-one"))
	ctx := context.Background()
	for _, job := range []struct {
		id  string
		run func() error
	}{
		{"nightly-report", func() error { return nil }},
		{"nightly-export", func() error { return fmt.Errorf("disk full") }},
	} {
		if err := c.Start(ctx, job.id); err != nil {
			fmt.Println("start:", err)
		}
		if err := job.run(); err != nil {
			_ = c.Fail(ctx, job.id)
		} else {
			_ = c.Ping(ctx, job.id)
		}
	}
	services, _ := c.Services(ctx)
	for _, s := range services {
		fmt.Println(s.ID, s.Status)
	}
	// Output:
	// nightly-export down
	// nightly-report up
}

// Keep a service up from a long-running program: Beat pings in the
// background until its context ends.
func ExampleClient_Beat() {
	fake, node := newFakeNode()
	defer node.Close()
	c, _ := client.New([]string{node.URL})
	ctx, stop := context.WithCancel(context.Background())
	done := c.Beat(ctx, "worker-1", 50*time.Millisecond, func(err error) {
		log.Println(err) // the next beat goes on
	})
	for fake.beatsOf("worker-1") < 3 { // the program's real work goes here
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	<-done
	fmt.Println("at least 3 heartbeats, then stopped")
	// Output: at least 3 heartbeats, then stopped
}

// A bad id is refused before anything is sent.
func ExampleValidID() {
	c, _ := client.New([]string{"127.0.0.1:8081"})
	fmt.Println(client.ValidID("backup-job"), client.ValidID("../etc"))
	fmt.Println(c.Ping(context.Background(), "../etc"))
	// Output:
	// true false
	// watchdog: invalid service id "../etc": want 1-128 characters of A-Za-z0-9._-, not "." or ".."
}
