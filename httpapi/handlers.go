package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchdog-ha/watchdog/cluster"
)

func (s *Server) handleHeartbeatQuery(w http.ResponseWriter, r *http.Request) {
	s.heartbeat(w, r, r.URL.Query().Get("id"), s.metrics.receivedQuery)
}

func (s *Server) handleHeartbeatPath(w http.ResponseWriter, r *http.Request) {
	s.heartbeat(w, r, mux.Vars(r)["id"], s.metrics.receivedV1)
}

// heartbeat commits one heartbeat; received counts the route form it came by.
func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request, id string, received prometheus.Counter) {
	if !allowed(w, r, s.access.pingToken, true) {
		return
	}
	if !ValidID(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid service id %s: want 1-128 of A-Za-z0-9._- (not . or ..)", quoteInput(id)))
		return
	}
	// The body means nothing to a heartbeat, but an oversized one is
	// refused rather than silently accepted.
	if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxHeartbeatBody)); err != nil {
		bodyError(w, err)
		return
	}
	received.Inc()
	ctx, cancel := context.WithTimeout(r.Context(), commitTimeout)
	defer cancel()
	if err := s.node.Heartbeat(ctx, id); err != nil {
		commitError(w, err)
		return
	}
	// The same bytes json.Encoder writes for {"id","status"}, without a map
	// and reflection per heartbeat: a valid id needs no escaping.
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"`+id+`","status":"committed"}`+"\n")
}

func bodyError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooBig.Limit))
	case errors.Is(err, os.ErrDeadlineExceeded):
		writeBodyTimeout(w)
	default:
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
	}
}

// handleForwarded takes a follower's batch of heartbeats. It never forwards
// again: if this node is not the leader, the follower hears 503 and its
// client retries. A follower sends at most batch_size ids, one per line: a
// larger batch or body is refused whole (413), and so is a batch with a
// bad line (400), rather than committing part of it.
func (s *Server) handleForwarded(w http.ResponseWriter, r *http.Request) {
	// The follower checked its client's token, and proves it may forward
	// by sending the same ping token: this route is no way around it.
	if !allowed(w, r, s.access.pingToken, false) {
		return
	}
	maxIDs := max(s.node.MaxBatch(), 1)
	limit := int64(maxIDs) * maxIDBytes
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a forwarded batch is at most %d ids (batch_size), %d bytes", maxIDs, limit))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		bodyError(w, err)
		return
	}
	ids, status, msg := forwardedIDs(body, maxIDs)
	if status != 0 {
		writeError(w, status, msg)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), commitTimeout)
	defer cancel()
	err = s.node.CommitHeartbeats(ctx, ids)
	var refused *cluster.RefusedError
	switch {
	case errors.As(err, &refused):
		// The others are committed: the follower answers each request.
		writeJSON(w, cluster.ForwardRefusedStatus, cluster.ForwardRefusedBody{Error: err.Error(), Refused: refused.Reasons()})
	case err != nil:
		commitError(w, err)
	default:
		writeJSON(w, http.StatusOK, map[string]int{"committed": len(ids)})
	}
}

// forwardedIDs splits a forwarded batch into its ids, one per line (a final
// newline, and a carriage return before each, allowed), or says why the
// batch is refused: more than maxIDs ids, a line that is no id, no id.
func forwardedIDs(body []byte, maxIDs int) (ids []string, status int, msg string) {
	text := strings.TrimSuffix(string(body), "\n")
	if text == "" {
		return nil, http.StatusBadRequest, "no service ids"
	}
	if n := strings.Count(text, "\n") + 1; n > maxIDs {
		return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("a forwarded batch is at most %d ids (batch_size), got %d", maxIDs, n)
	}
	ids = strings.Split(text, "\n")
	for i, id := range ids {
		id = strings.TrimSuffix(id, "\r")
		if !ValidID(id) {
			return nil, http.StatusBadRequest, fmt.Sprintf("line %d: invalid service id %s", i+1, quoteInput(id))
		}
		ids[i] = id
	}
	return ids, 0, ""
}

func (s *Server) handleServices(w http.ResponseWriter, r *http.Request) {
	svcs := s.state.Services()
	out := make([]serviceView, 0, len(svcs))
	now := s.node.Now()
	for _, svc := range svcs {
		v := viewOf(svc, false)
		withTimeline(s.state, &v, now)
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": out})
}

func (s *Server) handleService(w http.ResponseWriter, r *http.Request) {
	allowPeerOrigin(s.node, w.Header(), r) // the dashboard's history, after a failover (peers.go)
	id := mux.Vars(r)["id"]
	if !ValidID(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid service id %s", quoteInput(id)))
		return
	}
	svc, ok := s.state.Service(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no service %q", id))
		return
	}
	v, now := viewOf(svc, true), s.node.Now()
	withTimeline(s.state, &v, now)
	withUptime(s.state, &v, now)
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) handleCluster(w http.ResponseWriter, r *http.Request) {
	leader, _ := s.node.Leader()
	writeJSON(w, http.StatusOK, map[string]any{"leader": leader, "nodes": s.node.Members(),
		"config": s.state.ConfigInfo()})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if err := s.node.Ready(); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	leader, _ := s.node.Leader()
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "leader": leader})
}
