package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
)

// ForwardPath is the HTTP route on which a leader takes the heartbeats its
// followers received. Its body is the service ids, one per line.
const ForwardPath = "/v1/internal/heartbeats"

// ForwardedByHeader names the node that forwarded a request. A request that
// carries it is never forwarded again: one hop, no loops.
const ForwardedByHeader = "X-Watchdog-Forwarded-By"

// leaderChangeWait is how long a heartbeat waits for a leadership change to
// end before its client is told to try again: a handover takes tens of
// milliseconds, which a client would otherwise see as a burst of 503s.
const leaderChangeWait = time.Second

// Heartbeat records that the services were heard from now. It returns once
// the heartbeats are committed on a quorum. On a follower they travel to the
// leader, batched with the other heartbeats this node received meanwhile.
// The leader stamps the time (Now), so one clock orders all heartbeats. While
// leadership is changing it retries for up to leaderChangeWait, which is
// safe because heartbeats are idempotent.
func (n *Node) Heartbeat(ctx context.Context, ids ...string) error {
	deadline := time.Now().Add(leaderChangeWait)
	for {
		err := n.heartbeatOnce(ctx, ids)
		if err == nil || !leaderChanging(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return single(err, ids)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// leaderChanging reports whether err means only that the leader is changing.
// A leader that cannot write its log steps down (Raft does), so a storage
// error on the leader means a new leader is coming too.
func leaderChanging(err error) bool {
	return errors.Is(err, ErrNoLeader) || errors.Is(err, ErrStorage) || errors.Is(err, ErrNotLeader) ||
		errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress)
}

func (n *Node) heartbeatOnce(ctx context.Context, ids []string) error {
	if n.IsLeader() {
		err := n.commits.submit(ctx, ids)
		if !errors.Is(err, ErrNotLeader) {
			return err
		}
	}
	return n.forwards.submit(ctx, ids)
}

// CommitHeartbeats is Heartbeat for ids forwarded by another node: it commits
// them here, or fails with ErrNotLeader rather than forwarding again.
func (n *Node) CommitHeartbeats(ctx context.Context, ids []string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	return n.commits.submit(ctx, ids)
}

// commitLocal commits, on the leader, the ids admission lets in; the others
// come back in a *RefusedError, each to its own request.
func (n *Node) commitLocal(ctx context.Context, ids []string) error {
	ok, refused, release := n.admission.admit(ids, false)
	defer release()
	if len(ok) > 0 {
		if _, err := n.Apply(ctx, fsm.Heartbeat{At: n.Now().UnixNano(), IDs: ok}); err != nil {
			return err
		}
	}
	if len(refused) > 0 {
		return &RefusedError{IDs: refused}
	}
	return nil
}

// forward sends a batch to the leader over a kept-alive HTTP connection.
func (n *Node) forward(ctx context.Context, ids []string) error {
	leaderID, addr := n.Leader()
	switch {
	case leaderID == "":
		return ErrNoLeader
	case leaderID == n.cfg.NodeID:
		return n.commits.submit(ctx, ids)
	case addr == "":
		return fmt.Errorf("%w: leader %s has no known HTTP address yet", ErrNoLeader, leaderID)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout+time.Second)
	defer cancel()
	// A leader that hangs (cut off, frozen) would hold this batch, and every
	// heartbeat queued behind it, for the whole timeout: give up as soon as
	// this node knows another leader.
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if id, _ := n.Leader(); id != leaderID {
					cancel()
					return
				}
			}
		}
	}()
	body := strings.Join(ids, "\n")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.TLS.Scheme()+"://"+addr+ForwardPath, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("cluster: forward: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set(ForwardedByHeader, n.cfg.NodeID)
	if n.cfg.ForwardToken != "" {
		req.Header.Set("Authorization", "Bearer "+n.cfg.ForwardToken)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: forward to leader %s: %w", ErrNoLeader, leaderID, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxRefusedBody))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == ForwardRefusedStatus:
		return forwardRefused(leaderID, msg)
	case resp.StatusCode == http.StatusServiceUnavailable:
		return fmt.Errorf("%w: leader %s: %s", ErrNoLeader, leaderID, bytes.TrimSpace(msg[:min(len(msg), 512)]))
	default:
		return fmt.Errorf("cluster: forward to leader %s: %s: %s", leaderID, resp.Status, bytes.TrimSpace(msg[:min(len(msg), 512)]))
	}
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
