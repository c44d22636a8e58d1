package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// forwardGate stands in front of a leader's internal handler and holds the
// batches forwarded over HTTP until open is closed. It answers the stream
// handshake as a leader on a build without the stream does: 404.
type forwardGate struct {
	next     http.Handler
	mu       sync.Mutex
	bodies   []string
	held     int
	open     chan struct{}
	upgrades int // stream handshakes refused
}

func (g *forwardGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == ForwardStreamPath {
		g.mu.Lock()
		g.upgrades++
		g.mu.Unlock()
		http.Error(w, "no such route", http.StatusNotFound)
		return
	}
	if r.URL.Path != ForwardPath {
		g.next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	g.bodies = append(g.bodies, string(body))
	g.held++
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-r.Context().Done():
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	g.next.ServeHTTP(w, r)
}

// startPeerNode starts a node whose HTTP port serves its internal routes,
// through wrap if given.
func startPeerNode(t *testing.T, id string, expect int, join []string, tweak func(*Config), wrap func(http.Handler) http.Handler) *Node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := startSecretNode(t, id, expect, join, func(c *Config) {
		c.HTTPAddr = ln.Addr().String()
		if tweak != nil {
			tweak(c)
		}
	})
	var h http.Handler = n.InternalHandler(InternalAuth{})
	if wrap != nil {
		h = wrap(h)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return n
}

// leaderAndFollower starts n1, which leads, its HTTP port served through
// wrap, and n2, which follows it; each tuned by its function (may be nil).
func leaderAndFollower(t *testing.T, leaderCfg, followerCfg func(*Config), wrap func(http.Handler) http.Handler) (leader, follower *Node) {
	t.Helper()
	leader = startPeerNode(t, "n1", 1, nil, leaderCfg, wrap)
	waitUntil(t, 15*time.Second, "n1 to lead", leader.IsLeader)
	follower = startPeerNode(t, "n2", 0, []string{leader.GossipAddr()}, followerCfg, nil)
	waitUntil(t, 15*time.Second, "n2 to follow n1", func() bool {
		id, addr := follower.Leader()
		return id == "n1" && addr != ""
	})
	return leader, follower
}

// To a leader on a build without the forward stream (its handshake gets
// 404), a follower forwards over HTTP, and asks for a stream only once
// while that leader leads. There too it keeps several batches on their way
// at once, each gets its own answer, and a refused id fails only the
// requests that carried it, not the rest of its batch.
func TestHTTPForwardedBatchesInFlightEachGetTheirOwnAnswer(t *testing.T) {
	gate := &forwardGate{open: make(chan struct{})}
	leaderCfg := func(c *Config) {
		c.RefuseUnknown = true
		c.Configured = []string{"known-1", "known-2", "known-3"}
		c.BatchWindow = 0
	}
	followerCfg := func(c *Config) { c.BatchWindow, c.ForwardInflight = 0, 2 }
	leader, follower := leaderAndFollower(t, leaderCfg, followerCfg, func(h http.Handler) http.Handler { gate.next = h; return gate })
	fwd := follower.forwards
	held := func(n int) func() bool {
		return func() bool {
			gate.mu.Lock()
			defer gate.mu.Unlock()
			return gate.held >= n
		}
	}
	first := submitAsync(fwd, "known-1")
	waitUntil(t, 10*time.Second, "the first batch at the leader", held(1))
	second := submitAsync(fwd, "stranger-1")
	// Both are on their way at once (one at a time, the second would wait
	// for the first, which the gate holds). Meanwhile a third batch forms
	// behind them, with a refused id among good ones.
	waitUntil(t, 10*time.Second, "two batches in flight at once", held(2))
	third := []chan error{submitAsync(fwd, "known-2"), submitAsync(fwd, "stranger-2"), submitAsync(fwd, "known-3")}
	close(gate.open)
	if err := <-first; err != nil {
		t.Fatalf("known-1: %v", err)
	}
	if err := <-second; !errors.Is(err, fsm.ErrUnknownService) {
		t.Fatalf("stranger-1: %v, want its refusal", err)
	}
	for i, want := range []error{nil, fsm.ErrUnknownService, nil} {
		err := <-third[i]
		if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
			t.Fatalf("third batch, request %d: %v, want %v", i, err, want)
		}
	}
	gate.mu.Lock()
	bodies := slices.Clone(gate.bodies)
	gate.mu.Unlock()
	if !slices.Contains(bodies, "known-2\nstranger-2\nknown-3") {
		t.Fatalf("forwarded bodies %q: the third batch was not sent as one", bodies)
	}
	appliedNotRefused(t, leader, follower, "stranger-2", "known-1", "known-3")
	gate.mu.Lock()
	defer gate.mu.Unlock()
	if gate.upgrades != 1 {
		t.Fatalf("the follower asked %d times for a stream to the same leader, want once", gate.upgrades)
	}
}

// appliedNotRefused waits for follower to apply the heartbeats of ids, and
// checks that the leader never committed refused.
func appliedNotRefused(t *testing.T, leader, follower *Node, refused string, ids ...string) {
	t.Helper()
	waitUntil(t, 10*time.Second, "the follower to apply the heartbeats", func() bool {
		for _, id := range ids {
			if _, ok := follower.FSM().Service(id); !ok {
				return false
			}
		}
		return true
	})
	if _, ok := leader.FSM().Service(refused); ok {
		t.Fatalf("the refused %s was committed", refused)
	}
}

// The internal routes answer a failed commit or removal as they always
// have: a refused membership change is final (409, 404) in its own words,
// anything else is a 503, and a wait that ran out says the route's words.
func TestPeerFailureAnswersEachErrorAsBefore(t *testing.T) {
	const late = "heartbeats not committed in time"
	refused := fmt.Errorf("%w: n2 is the leader", ErrRefused)
	unknown := fmt.Errorf("%w: %q", ErrUnknownMember, "n9")
	for _, c := range []struct {
		err    error
		status int
		msg    string
	}{
		{refused, http.StatusConflict, refused.Error()},
		{unknown, http.StatusNotFound, unknown.Error()},
		{fmt.Errorf("commit: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, late},
		{context.Canceled, http.StatusServiceUnavailable, late},
		{ErrNotLeader, http.StatusServiceUnavailable, ErrNotLeader.Error()},
		{errors.New("disk full"), http.StatusServiceUnavailable, "disk full"},
	} {
		if status, msg := peerFailure(c.err, late); status != c.status || msg != c.msg {
			t.Errorf("%v: %d %q, want %d %q", c.err, status, msg, c.status, c.msg)
		}
	}
}
