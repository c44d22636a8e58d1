package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Node-to-node traffic lives in the peer*.go files, one home for both ends:
//
//   - peer.go: the routes, the one leader lookup, the client the calls go
//     out on (kept-alive connections, signed with the cluster secret);
//   - peer_client.go: the calls a node makes (forwarded heartbeats, status
//     polls, a leave request, writes proxied to the leader);
//   - peer_handler.go: the http.Handler that answers them, which httpapi
//     mounts under InternalPrefix;
//   - forward_stream.go, forward_serve.go, forward_frame.go: forwarded
//     heartbeats on one long-lived connection per follower (the follower's
//     end, the leader's, the frames), opened by a request to that handler.
//
// Forwarded writes go to the leader's public route, not an internal one:
// the leader then runs exactly the handler it would for a client.

// InternalPrefix is where the routes only the cluster's nodes call live.
const InternalPrefix = "/v1/internal/"

// The internal routes.
const (
	// ForwardPath takes the heartbeats a follower received: the body is
	// their service ids, one per line.
	ForwardPath = InternalPrefix + "heartbeats"
	// StatusPath reports a node's own Raft status (see NodeStatus and
	// statusLoop for why the nodes poll each other).
	StatusPath = InternalPrefix + "status"
	// LeavePath is where a leaving node asks the leader to remove it from
	// the Raft configuration (see Node.Leave). Query: id, and force.
	LeavePath = InternalPrefix + "leave"
)

// ForwardedByHeader names the node that forwarded a request. A request that
// carries it is never forwarded again: one hop, no loops.
const ForwardedByHeader = "X-Watchdog-Forwarded-By"

// peerIdleConns is how many kept-alive connections a node keeps to each
// other node: its forwarded batches in flight, a status poll, a proxied
// write or two.
const peerIdleConns = DefaultForwardInflight + 4

// leaderPeer is the one leader lookup of the calls to the leader: its id
// and HTTP address, or ErrNoLeader when none is known or its address is
// not known yet. The id may be this node's own.
func (n *Node) leaderPeer() (id, addr string, err error) {
	id, addr = n.Leader()
	switch {
	case id == "":
		return "", "", ErrNoLeader
	case addr == "":
		return "", "", fmt.Errorf("%w: leader %s has no known HTTP address yet", ErrNoLeader, id)
	}
	return id, addr, nil
}

// peerURL is the URL of path (with its query) on the node at addr.
func (n *Node) peerURL(addr, path string) string {
	return n.cfg.TLS.Scheme() + "://" + addr + path
}

// newPeerRequest is a request to another node, signed with the cluster
// secret (AuthorizePeer). Every call in peer_client.go is made with it, so
// none goes out unsigned, and none pays for a copy of itself to be signed.
func (n *Node) newPeerRequest(ctx context.Context, method, url string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	n.AuthorizePeer(req)
	return req, nil
}

// leaderWatch hands out a context that is cancelled when the leader
// changes: a call to the leader that the change has made pointless ends at
// once, without a goroutine or a ticker per call to watch for it.
type leaderWatch struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
}

func newLeaderWatch() *leaderWatch {
	w := &leaderWatch{}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

// current is cancelled at the next change of leader.
func (w *leaderWatch) current() context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ctx
}

func (w *leaderWatch) changed() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel()
	w.ctx, w.cancel = context.WithCancel(context.Background())
}

// observer tells the watch of each change of leader, in Raft's own
// goroutine: the filter lets nothing through, so no channel is needed.
func (w *leaderWatch) observer() *raft.Observer {
	return raft.NewObserver(nil, false, func(o *raft.Observation) bool {
		if _, ok := o.Data.(raft.LeaderObservation); ok {
			w.changed()
		}
		return false
	})
}

// newPeerHTTPClient is the client of the calls nodes make to each other,
// over kept-alive connections; TLS with the node's certificate when the
// cluster has TLS material.
func newPeerHTTPClient(t *TLS) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: peerIdleConns, IdleConnTimeout: time.Minute}
	if t != nil {
		tr.TLSClientConfig = t.ClientConfig()
	}
	return &http.Client{Transport: tr}
}

// writePeerJSON answers an internal call, or a proxied write that could not
// reach the leader, in the API's JSON.
func writePeerJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writePeerError(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1") // nothing was done: try again
	}
	writePeerJSON(w, status, map[string]string{"error": msg})
}

// readAnswer reads at most limit bytes of an answer.
func readAnswer(resp *http.Response, limit int64) []byte {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	return b
}
