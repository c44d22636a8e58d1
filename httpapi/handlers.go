package httpapi

import (
	"fmt"
	"io"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// Topology is what the cluster and health routes, and the status page,
// read of the node: who it is, whom it follows, the members, and whether
// it is ready.
type Topology interface {
	ID() string
	Leader() (id, httpAddr string)
	Members() []cluster.Member
	Ready() error
}

func (s *Server) handleHeartbeatQuery(w http.ResponseWriter, r *http.Request) {
	s.heartbeat(w, r, r.URL.Query().Get("id"), s.metrics.receivedQuery)
}

func (s *Server) handleHeartbeatPath(w http.ResponseWriter, r *http.Request) {
	s.heartbeat(w, r, mux.Vars(r)["id"], s.metrics.receivedV1)
}

// heartbeat commits one heartbeat; received counts the route form it came by.
//
// It is the hot path, so it does no more per request than it must (the
// profile of a node at 2 000 heartbeats/s had this handler spend 42 % of
// its time on a per-request timer): no deadline of its own (the commit is
// bounded where it is shared, per batch: Raft's apply timeout, the forward
// timeout, the leader-change wait), no body reader when there is no body,
// and a reply written in pieces without a map or a concatenated string.
func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request, id string, received prometheus.Counter) {
	if !allowed(w, r, s.access.pingToken, true) {
		return
	}
	if !fsm.ValidID(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid service id %s: want 1-128 of A-Za-z0-9._- (not . or ..)", quoteInput(id)))
		return
	}
	// The body means nothing to a heartbeat, but an oversized one is
	// refused rather than silently accepted.
	if r.Body != nil && r.Body != http.NoBody {
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxHeartbeatBody)); err != nil {
			bodyError(w, err)
			return
		}
	}
	received.Inc()
	// The request's own context still ends the wait if the client goes.
	if err := s.node.HeartbeatID(r.Context(), id); err != nil {
		commitError(w, err)
		return
	}
	// The same bytes json.Encoder writes for {"id","status"}: a valid id
	// needs no escaping. The header value is shared, never modified.
	w.Header()["Content-Type"] = jsonContentType
	io.WriteString(w, `{"id":"`)
	io.WriteString(w, id)
	io.WriteString(w, `","status":"committed"}`+"\n")
}

var jsonContentType = []string{"application/json"}

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
	if !fsm.ValidID(id) {
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
