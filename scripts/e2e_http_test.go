//go:build unix

package scripts_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const pollInterval = 100 * time.Millisecond

// client talks only to loopback: no proxy from the environment, no pooled
// connections that could outlive a killed node.
var client = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
}

type serviceView struct {
	ID       string          `json:"id"`
	Status   string          `json:"status"`
	LastSeen string          `json:"last_seen"`
	Timeout  string          `json:"timeout"`
	Actions  json.RawMessage `json:"actions"`
	Incident json.RawMessage `json:"incident"`
}

type clusterView struct {
	Leader string `json:"leader"`
	Nodes  []struct {
		ID       string `json:"id"`
		HTTPAddr string `json:"http_addr"`
		RaftAddr string `json:"raft_addr"`
		Voter    bool   `json:"voter"`
		Alive    bool   `json:"alive"`
	} `json:"nodes"`
}

func nodeURLs(ns []node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.url)
	}
	return out
}

func nodeIDs(ns []node) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.id)
	}
	return strings.Join(out, ",")
}

func status(method, u string) (int, error) {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func getJSON(u string, v any) (int, error) {
	resp, err := client.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: decoding %q: %w", u, body, err)
	}
	return resp.StatusCode, nil
}

// sendHeartbeat sends one heartbeat for id: form "query" is /heartbeat?id=ID
// (GET, POST or HEAD), form "path" is POST /v1/heartbeat/ID.
func sendHeartbeat(base, method, form, id string) (int, error) {
	u := base + "/heartbeat?id=" + url.QueryEscape(id)
	if form == "path" {
		u = base + "/v1/heartbeat/" + url.PathEscape(id)
	}
	return status(method, u)
}

// heartbeatUntilOK sends a heartbeat for id to the targets in turn, moving on
// after a 503 or a connection error as a load balancer would, until one
// answers 200. Any other status fails the test.
func heartbeatUntilOK(t *testing.T, targets []string, id string, timeout time.Duration) {
	t.Helper()
	i := 0
	waitFor(t, timeout, "a 200 for a heartbeat of "+id+" from one of "+strings.Join(targets, " "), func() (bool, string) {
		for range targets {
			base := targets[i%len(targets)]
			i++
			code, err := sendHeartbeat(base, http.MethodPost, "path", id)
			if err == nil && code == http.StatusOK {
				return true, ""
			}
			if err == nil && code != http.StatusServiceUnavailable {
				t.Fatalf("POST %s/v1/heartbeat/%s = %d; want 200 (or 503 without a leader)", base, id, code)
			}
		}
		return false, "every target answered 503 or failed"
	})
}

// waitForReady polls GET /readyz on n until it answers 200.
func waitForReady(t *testing.T, n node, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, n.id+" GET /readyz = 200", func() (bool, string) {
		code, err := status(http.MethodGet, n.url+"/readyz")
		return err == nil && code == http.StatusOK, fmt.Sprintf("status %d, err %v", code, err)
	})
}

// waitForStatus polls GET /v1/services/id on n until it shows the status.
func waitForStatus(t *testing.T, n node, id, want string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%s to show %s as %s", n.id, id, want), func() (bool, string) {
		var s serviceView
		code, err := getJSON(n.url+"/v1/services/"+url.PathEscape(id), &s)
		if err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("GET /v1/services/%s = %d, %v", id, code, err)
		}
		return s.ID == id && s.Status == want, fmt.Sprintf("%+v", s)
	})
}

// leadersSeen asks each node for its leader; ok is false, with the reason in
// last, if one of them does not answer.
func leadersSeen(ns []node) (seen []string, ok bool, last string) {
	for _, n := range ns {
		var c clusterView
		if code, err := getJSON(n.url+"/v1/cluster", &c); err != nil || code != http.StatusOK {
			return nil, false, fmt.Sprintf("%s: GET /v1/cluster = %d, %v", n.id, code, err)
		}
		seen = append(seen, c.Leader)
	}
	return seen, true, ""
}

// agreed returns the leader every node in seen names, or "" if they differ
// or name none.
func agreed(seen []string) string {
	if len(seen) == 0 || slices.ContainsFunc(seen, func(s string) bool { return s != seen[0] }) {
		return ""
	}
	return seen[0]
}

// currentLeader returns the leader the nodes agree on.
func currentLeader(t *testing.T, ns []node) string {
	t.Helper()
	var leader string
	waitFor(t, 5*time.Second, "the nodes to agree on a leader", func() (bool, string) {
		seen, ok, last := leadersSeen(ns)
		if !ok {
			return false, last
		}
		leader = agreed(seen)
		return leader != "", fmt.Sprintf("%q", seen)
	})
	return leader
}

// waitForNewLeader returns the leader the nodes agree on once it is not old.
func waitForNewLeader(t *testing.T, ns []node, old string, timeout time.Duration) string {
	t.Helper()
	var leader string
	waitFor(t, timeout, "a new leader among "+nodeIDs(ns), func() (bool, string) {
		seen, ok, last := leadersSeen(ns)
		if !ok {
			return false, last
		}
		leader = agreed(seen)
		return leader != "" && leader != old, fmt.Sprintf("leaders seen by %s: %q", nodeIDs(ns), seen)
	})
	return leader
}

// waitFor polls cond every pollInterval until it holds, or fails the test
// after timeout with what cond last reported.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", timeout.Round(time.Millisecond), what, last)
		}
		time.Sleep(pollInterval)
	}
}

// heartbeater sends a heartbeat for one service every 500ms, trying its
// targets in turn until one commits it (200), and keeps statistics.
type heartbeater struct {
	id       string
	stop     chan struct{}
	done     chan struct{}
	haltOnce sync.Once

	mu      sync.Mutex
	targets []string
	st      hbStats
	lastOK  time.Time
}

type hbStats struct {
	ticks, ok, failedTicks, retries int
	maxGap                          time.Duration
}

func (s hbStats) String() string {
	return fmt.Sprintf("%d ticks, %d committed, %d ticks without a commit, %d retries on another target, longest gap between commits %v",
		s.ticks, s.ok, s.failedTicks, s.retries, s.maxGap.Round(time.Millisecond))
}

func newHeartbeater(id string, targets []string) *heartbeater {
	return &heartbeater{id: id, targets: slices.Clone(targets), stop: make(chan struct{}), done: make(chan struct{})}
}

func (h *heartbeater) setTargets(targets []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.targets = slices.Clone(targets)
}

func (h *heartbeater) stats() hbStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st
}

// halt stops the heartbeater and waits for it; safe to call more than once.
func (h *heartbeater) halt() {
	h.haltOnce.Do(func() { close(h.stop) })
	<-h.done
}

func (h *heartbeater) run() {
	defer close(h.done)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	next := 0
	for {
		h.beat(&next)
		select {
		case <-h.stop:
			return
		case <-tick.C:
		}
	}
}

func (h *heartbeater) beat(next *int) {
	h.mu.Lock()
	targets := h.targets
	h.st.ticks++
	h.mu.Unlock()
	hc := &http.Client{Timeout: time.Second, Transport: client.Transport}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		base := targets[*next%len(targets)]
		*next++
		if h.post(hc, base) {
			return
		}
		h.mu.Lock()
		h.st.retries++
		h.mu.Unlock()
		if attempt%len(targets) == len(targets)-1 {
			// Every target refused this round: back off a little (or stop).
			select {
			case <-h.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	h.mu.Lock()
	h.st.failedTicks++
	h.mu.Unlock()
}

// post sends one heartbeat to base and reports whether it was committed.
func (h *heartbeater) post(hc *http.Client, base string) bool {
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/heartbeat/"+url.PathEscape(h.id), nil)
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.st.ok++
	if !h.lastOK.IsZero() {
		h.st.maxGap = max(h.st.maxGap, now.Sub(h.lastOK))
	}
	h.lastOK = now
	return true
}
