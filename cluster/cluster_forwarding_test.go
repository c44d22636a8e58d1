package cluster

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// arrival is a request as the node that received it saw it.
type arrival struct {
	at, path    string // the node it reached, and where
	peer        string // who signed it, "" if no node did
	forwardedBy string // its ForwardedByHeader
}

// arrivals records the requests that reach the nodes' HTTP ports.
type arrivals struct {
	mu   sync.Mutex
	seen []arrival
}

func (a *arrivals) note(n *Node, r *http.Request) {
	peer, _ := n.Peer(r)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = append(a.seen, arrival{at: n.ID(), path: r.URL.Path, peer: peer, forwardedBy: r.Header.Get(ForwardedByHeader)})
}

// on returns the arrivals at path, in order.
func (a *arrivals) on(path string) []arrival {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []arrival
	for _, x := range a.seen {
		if x.path == path {
			out = append(out, x)
		}
	}
	return out
}

// testBeatPath is a write route of the test's own, as httpapi's are: the
// leader commits a heartbeat; a follower proxies the request to it.
const testBeatPath = "/test/beat/"

// recordingHandler serves n's internal routes and testBeatPath, noting
// every request in seen before it is answered.
func recordingHandler(seen *arrivals) func(*Node) http.Handler {
	return func(n *Node) http.Handler {
		mux := http.NewServeMux()
		mux.Handle(InternalPrefix, n.InternalHandler(InternalAuth{}))
		mux.HandleFunc("POST "+testBeatPath+"{id}", func(w http.ResponseWriter, r *http.Request) {
			if !n.IsLeader() {
				n.ProxyToLeader(w, r, 10*time.Second)
				return
			}
			_, err := n.Apply(r.Context(), fsm.Heartbeat{At: n.Now().UnixNano(), IDs: []string{r.PathValue("id")}})
			if err != nil {
				writePeerError(w, http.StatusServiceUnavailable, err.Error())
			}
		})
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen.note(n, r)
			mux.ServeHTTP(w, r)
		})
	}
}

// A heartbeat a follower takes travels to the leader on the follower's
// stream, opened once by a handshake signed as the follower's, and is
// committed there; the follower reads it once it has applied it. Many
// heartbeats later, some at once, the stream is still the only one.
func TestAFollowersHeartbeatIsCommittedThroughTheLeader(t *testing.T) {
	seen := &arrivals{}
	c := newCluster(t, 3, withHandler(recordingHandler(seen)))
	follower := c.Followers()[0]
	c.Beat(follower, "via-follower")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { c.Beat(follower, fmt.Sprintf("at-once-%d", i)) })
	}
	wg.Wait()
	if http := seen.on(ForwardPath); len(http) != 0 {
		t.Fatalf("the follower forwarded over HTTP (%+v) to a leader with a stream route", http)
	}
	forwarded := seen.on(ForwardStreamPath)
	if len(forwarded) != 1 {
		t.Fatalf("the follower opened %d streams to the leader, want one", len(forwarded))
	}
	for _, a := range forwarded {
		if a.at == follower.ID() || a.peer != follower.ID() || a.forwardedBy != follower.ID() {
			t.Fatalf("forwarded batch %+v, want it at the leader, signed and forwarded by %s", a, follower.ID())
		}
	}
	leader := c.Sync()
	want := lastSeen(t, leader, "via-follower")
	for _, n := range c.Followers() {
		if got := lastSeen(t, n, "via-follower"); !maps.Equal(got, want) {
			t.Fatalf("%s has %v, the leader %v", n.ID(), got, want)
		}
	}
}

// A write sent to a follower is proxied to the leader, signed by the
// follower whatever credentials the client sent, and the answer comes
// back; a request that was forwarded once is never forwarded again.
func TestAWriteSentToAFollowerIsProxiedToTheLeader(t *testing.T) {
	seen := &arrivals{}
	c := newCluster(t, 3, withHandler(recordingHandler(seen)))
	leader, follower := c.Leader(), c.Followers()[0]
	forged := c.Followers()[1].ID() + " " + strings.Repeat("0", 64)
	if code, body := postTo(t, follower, testBeatPath+"proxied", map[string]string{PeerAuthHeader: forged}); code != http.StatusOK {
		t.Fatalf("write through %s: %d %s", follower.ID(), code, body)
	}
	lastSeen(t, leader, "proxied")
	var atLeader []arrival
	for _, a := range seen.on(testBeatPath + "proxied") {
		if a.at == leader.ID() {
			atLeader = append(atLeader, a)
		}
	}
	if len(atLeader) != 1 || atLeader[0].peer != follower.ID() || atLeader[0].forwardedBy != follower.ID() {
		t.Fatalf("the write reached the leader as %+v, want once, signed and forwarded by %s", atLeader, follower.ID())
	}

	// One hop: a follower that gets a forwarded request says leadership
	// moved rather than sending it on.
	code, body := postTo(t, follower, testBeatPath+"second-hop", map[string]string{ForwardedByHeader: "n9"})
	if code != http.StatusServiceUnavailable {
		t.Fatalf("a forwarded write at a follower: %d %s, want 503", code, body)
	}
	if len(seen.on(testBeatPath+"second-hop")) != 1 {
		t.Fatal("a write that was forwarded once went on to another node")
	}
	if _, ok := leader.FSM().Service("second-hop"); ok {
		t.Fatal("a write forwarded twice was committed")
	}
}

// The internal routes answer only requests signed with the cluster
// secret, by the node that signed them: an unsigned request, a made-up
// signature, or another node's signature under a new name is a 401.
func TestInternalRoutesAnswerOnlyTheClustersNodes(t *testing.T) {
	c := newCluster(t, 3)
	leader, followers := c.Leader(), c.Followers()
	signed := func(n *Node) string {
		req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		n.AuthorizePeer(req)
		return req.Header.Get(PeerAuthHeader)
	}
	_, sig, _ := strings.Cut(signed(followers[0]), " ")
	for _, tc := range []struct {
		name, header string
		want         int
	}{
		{"unsigned", "", http.StatusUnauthorized},
		{"made-up signature", followers[0].ID() + " " + strings.Repeat("ab", len(sig)/2), http.StatusUnauthorized},
		{"another node's signature", followers[1].ID() + " " + sig, http.StatusUnauthorized},
		{"signed by a member", signed(followers[0]), http.StatusOK},
	} {
		if got, body := getFrom(t, leader, StatusPath, tc.header); got != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, got, body, tc.want)
		}
	}
	// And the nodes' own calls are signed: they poll each other's status.
	c.waitFor("every node to have polled the others' status", func() bool {
		for _, n := range c.Running() {
			for _, m := range n.Members() {
				if m.StatusError != "" {
					return false
				}
			}
		}
		return true
	})
}

// postTo posts an empty body to path on n's HTTP port, with headers.
func postTo(t *testing.T, n *Node, path string, headers map[string]string) (int, string) {
	t.Helper()
	return requestTo(t, n, http.MethodPost, path, headers)
}

// requestTo sends a request without a body to path on n's HTTP port, with
// headers.
func requestTo(t *testing.T, n *Node, method, path string, headers map[string]string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clusterWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+n.cfg.HTTPAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

// getFrom gets path from n's HTTP port, with peerAuth as PeerAuthHeader
// unless it is empty.
func getFrom(t *testing.T, n *Node, path, peerAuth string) (int, string) {
	t.Helper()
	headers := map[string]string{}
	if peerAuth != "" {
		headers[PeerAuthHeader] = peerAuth
	}
	return requestTo(t, n, http.MethodGet, path, headers)
}

// do sends req and returns the status of the answer, and its body.
func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, "" // the body is the connection: nothing ends it
	}
	return resp.StatusCode, strings.TrimSpace(string(readAnswer(resp, 4096)))
}
