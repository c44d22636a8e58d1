package chaos

// Observing the cluster over the nodes' HTTP APIs and files: who leads,
// whether all agree and are healthy, and what the action scripts recorded.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// probe is for the test's own questions: short timeouts, no pooled
// connection that could outlive a killed node.
var probe = &http.Client{
	Timeout:   700 * time.Millisecond,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
}

func getJSON(u string, v any) error {
	resp, err := probe.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}

type clusterView struct {
	Leader string `json:"leader"`
	Nodes  []struct {
		ID    string `json:"id"`
		Voter bool   `json:"voter"`
		Alive bool   `json:"alive"`
	} `json:"nodes"`
}

// leaderSeenBy is the leader node n reports, "" when none or unreachable.
func (c *cluster) leaderSeenBy(n *node) string {
	var v clusterView
	if err := getJSON(n.url("/v1/cluster"), &v); err != nil {
		return ""
	}
	return v.Leader
}

func (c *cluster) byID(id string) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// leader is the node every running node names as leader, and that names
// itself, or nil.
func (c *cluster) leader(among []*node) *node {
	seen := ""
	for _, n := range among {
		l := c.leaderSeenBy(n)
		if l == "" || (seen != "" && l != seen) {
			return nil
		}
		seen = l
	}
	ln := c.byID(seen)
	if ln == nil || c.leaderSeenBy(ln) != seen {
		return nil
	}
	return ln
}

// waitNewLeader waits until a node among names a leader other than old,
// that node agreeing, and returns it with the time it took since from.
func (c *cluster) waitNewLeader(among []*node, old *node, from time.Time, within time.Duration) (*node, time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, n := range among {
			l := c.byID(c.leaderSeenBy(n))
			if l != nil && l != old && c.leaderSeenBy(l) == l.id {
				return l, time.Since(from)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no new leader among %v within %v (old %s)", ids(among), within, old.id)
	return nil, 0
}

func ids(ns []*node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.id)
	}
	return out
}

// healthy reports why the cluster is not fully back: every node ready,
// agreeing on one leader, with every node a voter.
func (c *cluster) healthy() error {
	leader := ""
	for _, n := range c.nodes {
		resp, err := probe.Get(n.url("/readyz"))
		if err != nil {
			return fmt.Errorf("%s: %w", n.id, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s not ready: %s", n.id, strings.TrimSpace(string(body)))
		}
		var v clusterView
		if err := getJSON(n.url("/v1/cluster"), &v); err != nil {
			return err
		}
		voters := 0
		for _, m := range v.Nodes {
			if m.Voter {
				voters++
			}
		}
		switch {
		case v.Leader == "":
			return fmt.Errorf("%s knows no leader", n.id)
		case leader != "" && v.Leader != leader:
			return fmt.Errorf("%s says the leader is %s, others %s", n.id, v.Leader, leader)
		case voters != len(c.nodes):
			return fmt.Errorf("%s sees %d voters", n.id, voters)
		}
		leader = v.Leader
	}
	return nil
}

func (c *cluster) waitHealthy(within time.Duration) {
	c.t.Helper()
	if err := c.healthyWithin(within); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) healthyWithin(within time.Duration) error {
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		if err = c.healthy(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cluster not healthy within %v: %w", within, err)
}

// waitStable waits until the cluster has been healthy for a whole stretch
// of hold: a node back from a wiped data dir looks whole at first, and is
// demoted until it catches up a moment later.
func (c *cluster) waitStable(within, hold time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	var since time.Time
	var err error
	for time.Now().Before(deadline) {
		if err = c.healthy(); err != nil {
			since = time.Time{}
		} else if since.IsZero() {
			since = time.Now()
		} else if time.Since(since) >= hold {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("cluster not healthy for %v in a row within %v: %v", hold, within, err)
}

// lastSeen reads every service's last_seen on node n.
func lastSeen(n *node) (map[string]time.Time, error) {
	var v struct {
		Services []struct {
			ID       string     `json:"id"`
			LastSeen *time.Time `json:"last_seen"`
		} `json:"services"`
	}
	if err := getJSON(n.url("/v1/services"), &v); err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, s := range v.Services {
		if s.LastSeen != nil {
			out[s.ID] = *s.LastSeen
		}
	}
	return out, nil
}

// readActions reads every node's action log.
func (c *cluster) readActions() ([]Exec, error) {
	var out []Exec
	for _, n := range c.nodes {
		b, err := os.ReadFile(n.actionLog)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for line := range strings.Lines(string(b)) {
			if strings.TrimSpace(line) == "" || !strings.HasSuffix(line, "\n") {
				continue // a line being written
			}
			e, err := ParseActionLine(line)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n.actionLog, err)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// raftIndexes is a node's own commit and applied index, from its metrics
// (its /v1/internal/status answers only the other nodes).
func raftIndexes(n *node) (commit, applied uint64, err error) {
	resp, err := probe.Get(n.url("/metrics"))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("%s: %s", n.url("/metrics"), resp.Status)
	}
	found := 0
	for line := range strings.SplitSeq(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || (name != "watchdog_raft_commit_index" && name != "watchdog_raft_applied_index") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %q: %w", n.url("/metrics"), line, err)
		}
		if name == "watchdog_raft_commit_index" {
			commit = uint64(f)
		} else {
			applied = uint64(f)
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("%s: no Raft commit and applied index", n.url("/metrics"))
	}
	return commit, applied, nil
}

// replicasAfter reads every node's last_seen once each has applied all
// that any node knew to be committed after asOf, so that every heartbeat
// acknowledged before asOf is due on all of them. Read at once, a replica
// could lag by the round trip in which a follower learns of a commit, and
// the newest heartbeat would look lost when it is only on its way.
func (c *cluster) replicasAfter(asOf time.Time, wait time.Duration) (map[string]map[string]time.Time, error) {
	var commit uint64
	for _, n := range c.nodes {
		ci, _, err := raftIndexes(n)
		if err != nil {
			return nil, fmt.Errorf("%s: status: %w", n.id, err)
		}
		commit = max(commit, ci)
	}
	deadline := time.Now().Add(wait)
	for _, n := range c.nodes {
		for {
			_, applied, err := raftIndexes(n)
			if err != nil {
				return nil, fmt.Errorf("%s: status: %w", n.id, err)
			}
			if applied >= commit {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%s applied only up to %d of %d, committed by %s", n.id, applied, commit, asOf.Format(time.TimeOnly))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	seen := map[string]map[string]time.Time{}
	for _, n := range c.nodes {
		ls, err := lastSeen(n)
		if err != nil {
			return nil, fmt.Errorf("%s: services: %w", n.id, err)
		}
		seen[n.id] = ls
	}
	return seen, nil
}
