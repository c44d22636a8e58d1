package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// The calls a node makes to the others (see peer.go). Every one goes out on
// n.client: kept-alive connections, each request signed (newPeerRequest).

// forward sends a batch of heartbeats to the leader. Several batches may be
// on their way at once (Config.ForwardInflight), each with its own answer.
// They travel on this node's stream to the leader (forward_stream.go), or,
// to a leader on a build without one, each as its own HTTP request.
func (n *Node) forward(ctx context.Context, ids []string) error {
	// Taken before the lookup: a change after it ends this call.
	changed := n.leaders.current()
	leaderID, addr, err := n.leaderPeer()
	switch {
	case err != nil:
		return err
	case leaderID == n.cfg.NodeID:
		return n.commits.submit(ctx, ids)
	}
	s, err := n.streamTo(ctx, changed, leaderID, addr)
	switch {
	case err != nil:
		return err
	case s != nil:
		return s.send(ctx, ids)
	}
	return n.forwardHTTP(ctx, changed, leaderID, addr, ids)
}

// forwardHTTP sends a batch to the leader as one POST to ForwardPath, on a
// kept-alive connection: how a leader on a build without the stream route
// takes forwarded heartbeats.
func (n *Node) forwardHTTP(ctx, changed context.Context, leaderID, addr string, ids []string) error {
	ctx, cancel := context.WithTimeout(ctx, n.forwardTimeout())
	defer cancel()
	// A leader that hangs (cut off, frozen) would hold this batch for the
	// whole timeout: give up as soon as this node learns of another.
	stop := context.AfterFunc(changed, cancel)
	defer stop()
	req, err := n.newPeerRequest(ctx, http.MethodPost, n.peerURL(addr, ForwardPath), bytes.NewReader(forwardBody(ids)))
	if err != nil {
		return fmt.Errorf("cluster: forward: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain")
	n.forwardHeaders(req)
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: forward to leader %s: %w", ErrNoLeader, leaderID, err)
	}
	defer resp.Body.Close()
	msg := readAnswer(resp, maxRefusedBody)
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == ForwardRefusedStatus:
		return forwardRefused(leaderID, msg)
	case resp.StatusCode == http.StatusServiceUnavailable:
		return fmt.Errorf("%w: leader %s: %s", ErrNoLeader, leaderID, clip(msg))
	default:
		return fmt.Errorf("cluster: forward to leader %s: %s: %s", leaderID, resp.Status, clip(msg))
	}
}

// forwardTimeout bounds a forwarded batch's wait for its answer: the
// leader gives its commit ApplyTimeout.
func (n *Node) forwardTimeout() time.Duration { return n.cfg.ApplyTimeout + time.Second }

// forwardHeaders are what a forwarded batch, or the handshake of a stream
// of them, carries besides the signature: who forwards it (so that it is
// never forwarded again), and the ping token, which the leader requires
// on its forward routes as on its heartbeat routes.
func (n *Node) forwardHeaders(req *http.Request) {
	req.Header.Set(ForwardedByHeader, n.cfg.NodeID)
	if n.cfg.ForwardToken != "" {
		req.Header.Set("Authorization", "Bearer "+n.cfg.ForwardToken)
	}
}

// forwardBody is the compact form of a batch: its ids, one per line.
func forwardBody(ids []string) []byte {
	size := 0
	for _, id := range ids {
		size += len(id) + 1
	}
	return appendForwardBody(make([]byte, 0, size), ids)
}

// appendForwardBody appends the compact form of a batch to b.
func appendForwardBody(b []byte, ids []string) []byte {
	for i, id := range ids {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, id...)
	}
	return b
}

// fetchStatus asks one node for its status (StatusPath).
func (n *Node) fetchStatus(ctx context.Context, t statusTarget) peerStatus {
	fail := func(err error) peerStatus {
		return peerStatus{NodeStatus: NodeStatus{ID: t.id}, err: err.Error(), at: time.Now()}
	}
	if t.httpAddr == "" {
		return fail(fmt.Errorf("no HTTP address known from gossip"))
	}
	req, err := n.newPeerRequest(ctx, http.MethodGet, n.peerURL(t.httpAddr, StatusPath), nil)
	if err != nil {
		return fail(err)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	body := readAnswer(resp, 64<<10)
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("status: %s", resp.Status))
	}
	var st NodeStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return fail(fmt.Errorf("status: %w", err))
	}
	if st.ID != t.id {
		return fail(fmt.Errorf("%s answers as %q", t.httpAddr, st.ID))
	}
	return peerStatus{NodeStatus: st, ok: true, at: time.Now(), ref: n.raft.LastIndex(), refLeader: n.IsLeader()}
}

// postLeave asks the leader (LeavePath) to remove this node.
func (n *Node) postLeave(ctx context.Context, opts LeaveOptions) error {
	leaderID, addr, err := n.leaderPeer()
	switch {
	case err != nil:
		return err
	case leaderID == n.cfg.NodeID:
		return ErrNoLeader
	}
	// The leader takes the id from the request's signature
	// (AuthorizePeer); it is in the query too for people reading logs.
	q := url.Values{"id": {n.cfg.NodeID}}
	if opts.Force {
		q.Set("force", "true")
	}
	req, err := n.newPeerRequest(ctx, http.MethodPost, n.peerURL(addr, LeavePath+"?"+q.Encode()), nil)
	if err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	req.Header.Set(ForwardedByHeader, n.cfg.NodeID)
	if opts.Authorization != "" {
		req.Header.Set("Authorization", opts.Authorization)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: ask leader %s to remove us: %w", ErrNoLeader, leaderID, err)
	}
	defer resp.Body.Close()
	body := readAnswer(resp, 4096)
	var e struct{ Error string }
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = string(bytes.TrimSpace(body))
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusNotFound: // removed, or unknown: gone either way
		return nil
	case http.StatusConflict, http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest:
		// Final: asking again would get the same answer.
		return fmt.Errorf("%w: leader %s: %s", ErrRefused, leaderID, e.Error)
	}
	return fmt.Errorf("leader %s: %s: %s", leaderID, resp.Status, e.Error)
}

// ProxyToLeader sends r, a write this node cannot run, to the same route on
// the leader, and streams the answer back. A request another node forwarded
// here is never forwarded again (503 and Retry-After: leadership moved, the
// client retries), nor is one when no leader is known. timeout bounds the
// whole exchange.
func (n *Node) ProxyToLeader(w http.ResponseWriter, r *http.Request, timeout time.Duration) {
	if by := r.Header.Get(ForwardedByHeader); by != "" {
		writePeerError(w, http.StatusServiceUnavailable,
			fmt.Sprintf("%s: %s forwarded this request here, but leadership has moved: retry", ErrNotLeader, by))
		return
	}
	leaderID, addr, err := n.leaderPeer()
	switch {
	case err != nil:
		writePeerError(w, http.StatusServiceUnavailable, err.Error())
		return
	case leaderID == n.cfg.NodeID:
		// Raft still names this node while it is no longer leader.
		writePeerError(w, http.StatusServiceUnavailable, ErrNoLeader.Error()+": leadership is changing")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: n.cfg.TLS.Scheme(), Host: addr})
			pr.SetXForwarded()
			pr.Out.Header.Set(ForwardedByHeader, n.cfg.NodeID)
			n.AuthorizePeer(pr.Out) // replaces any such header the client sent
		},
		Transport: n.client.Transport,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writePeerError(w, http.StatusServiceUnavailable, fmt.Sprintf("%s: forward to leader %s: %s", ErrNoLeader, leaderID, err))
		},
	}
	proxy.ServeHTTP(w, r.WithContext(ctx))
}

// ForwardRefusedStatus answers a forwarded batch of which some ids were
// refused (the others are committed). The body is JSON, {"error": ...,
// "refused": {id: Refusal}}. It is not 200, so that a follower that does not
// know it fails the batch's requests (503, retried) rather than
// acknowledging a refused id.
const ForwardRefusedStatus = http.StatusConflict

// maxRefusedBody bounds the leader's answer to a forwarded batch: a refusal
// for every id of the largest batch.
const maxRefusedBody = 4 << 20

// ForwardRefusedBody is the body that goes with ForwardRefusedStatus.
type ForwardRefusedBody struct {
	Error   string             `json:"error"`
	Refused map[string]Refusal `json:"refused"`
}

func forwardRefused(leaderID string, body []byte) error {
	var b ForwardRefusedBody
	if err := json.Unmarshal(body, &b); err != nil || len(b.Refused) == 0 {
		return fmt.Errorf("cluster: forward to leader %s: unreadable refusal: %s", leaderID, bytes.TrimSpace(body[:min(len(body), 512)]))
	}
	return refusedFrom(b.Refused)
}
