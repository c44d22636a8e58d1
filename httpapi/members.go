package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// Membership is what the membership routes need from the node.
type Membership interface {
	// RemoveMember removes a node from the Raft configuration, on the
	// leader only (cluster.ErrNotLeader elsewhere).
	RemoveMember(ctx context.Context, id string, opts cluster.RemoveOptions) (bool, error)
	// Leave retires this node from the cluster.
	Leave(ctx context.Context, opts cluster.LeaveOptions) error
}

// leaveTimeout bounds a leave: a leadership transfer, a removal committed,
// and a gossip leave, each normally well under a second.
const leaveTimeout = 30 * time.Second

// membershipRoutes adds the routes that change or show membership:
//
//	POST   /v1/cluster/leave[?force=true]          this node leaves the cluster
//	DELETE /v1/cluster/members/{node}[?force=true] remove a node that is gone (any node; runs on the leader)
//
// The internal routes a leaving node calls, and status polls, are the
// cluster's (cluster.InternalHandler, mounted in internal.go).
func (s *Server) membershipRoutes(r *mux.Router) {
	r.HandleFunc("/v1/cluster/leave", s.handleLeave).Methods(http.MethodPost)
	r.HandleFunc("/v1/cluster/members/{node}", s.leaderWrite(s.handleRemoveMember)).Methods(http.MethodDelete)
}

// handleLeave retires this node. It answers once the node is out of the
// Raft configuration and of gossip; the agent then stops the process.
func (s *Server) handleLeave(w http.ResponseWriter, r *http.Request) {
	// The leaving node passes these credentials on to the leader, which
	// checks them again.
	if !allowed(w, r, s.access.apiToken, false) {
		return
	}
	force, err := boolParam(r, "force")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// A leave may take all of leaveTimeout: its answer must still go out.
	s.extendWriteDeadline(w, leaveTimeout+5*time.Second)
	ctx, cancel := context.WithTimeout(r.Context(), leaveTimeout)
	defer cancel()
	opts := cluster.LeaveOptions{Force: force, Authorization: r.Header.Get("Authorization")}
	if err := s.node.Leave(ctx, opts); err != nil {
		// A refusal is final (409), an unknown node 404, anything else
		// may pass (503, in the leave's own words even after a timeout).
		writeFailure(w, failureOf(err, ""))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"node": s.node.ID(), "left": true})
}

// handleRemoveMember removes a node that is gone for good. It runs on the
// leader (leaderWrite forwards it there).
func (s *Server) handleRemoveMember(r *http.Request) (int, any, error) {
	id := mux.Vars(r)["node"]
	if !fsm.ValidID(id) {
		return 0, nil, &badRequest{fmt.Sprintf("invalid node id %q: want 1-128 of A-Za-z0-9._- (not . or ..)", id)}
	}
	force, err := boolParam(r, "force")
	if err != nil {
		return 0, nil, &badRequest{err.Error()}
	}
	return s.removeMember(r, id, cluster.RemoveOptions{Force: force})
}

// removeMember runs a removal on the leader. Its errors go back to
// leaderWrite: a refusal is answered 409, an unknown node 404 (failureOf),
// and ErrNotLeader has the request forwarded to the new leader.
func (s *Server) removeMember(r *http.Request, id string, opts cluster.RemoveOptions) (int, any, error) {
	ctx, cancel := context.WithTimeout(r.Context(), commitTimeout)
	defer cancel()
	removed, err := s.node.RemoveMember(ctx, id, opts)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"node": id, "removed": removed}, nil
}

// boolParam reads an optional boolean query parameter.
func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", name, v)
	}
	return b, nil
}
