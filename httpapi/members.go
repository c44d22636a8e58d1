package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/cluster"
)

// Membership is what the membership routes need from the node.
type Membership interface {
	// Status is this node's own Raft status, which the other nodes poll.
	Status() cluster.NodeStatus
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
//	GET    /v1/internal/status                     this node's Raft status, polled by the others
//	POST   /v1/internal/leave[?force=]             a leaving node asks the leader to remove it
//
// The internal routes answer only the cluster's nodes (internal.go).
func (s *Server) membershipRoutes(r *mux.Router) {
	r.HandleFunc("/v1/cluster/leave", s.handleLeave).Methods(http.MethodPost)
	r.HandleFunc("/v1/cluster/members/{node}", s.leaderWrite(s.handleRemoveMember)).Methods(http.MethodDelete)
	r.HandleFunc(cluster.StatusPath, s.internal(s.handleStatus)).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(cluster.LeavePath, s.internal(s.handleLeaveRequest)).Methods(http.MethodPost)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.node.Status())
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
		status, body := membershipError(err)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeJSON(w, status, body)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"node": s.node.ID(), "left": true})
}

// handleRemoveMember removes a node that is gone for good. It runs on the
// leader (leaderWrite forwards it there).
func (s *Server) handleRemoveMember(r *http.Request) (int, any, error) {
	id := mux.Vars(r)["node"]
	if !ValidID(id) {
		return 0, nil, &badRequest{fmt.Sprintf("invalid node id %q: want 1-128 of A-Za-z0-9._- (not . or ..)", id)}
	}
	force, err := boolParam(r, "force")
	if err != nil {
		return 0, nil, &badRequest{err.Error()}
	}
	return s.removeMember(r, id, cluster.RemoveOptions{Force: force})
}

// handleLeaveRequest is a leaving node asking the leader to remove it. Like
// forwarded heartbeats it is never forwarded again: the leaving node finds
// the new leader and asks again. A node may retire only itself: the node
// removed is the one whose credentials signed the request, and the leader
// removes it only once that node, asked directly, says it is leaving.
func (s *Server) handleLeaveRequest(w http.ResponseWriter, r *http.Request) {
	// A removal like any other: the same token as DELETE /v1/cluster/members.
	if !allowed(w, r, s.access.apiToken, false) {
		return
	}
	id, _ := s.node.Peer(r) // internal() has checked it
	force, err := boolParam(r, "force")
	switch {
	case !ValidID(id):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid node id %q", id))
		return
	case r.URL.Query().Has("id") && r.URL.Query().Get("id") != id:
		writeError(w, http.StatusForbidden, fmt.Sprintf("%s may ask only for its own removal, not for %q's", id, r.URL.Query().Get("id")))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case !s.node.IsLeader():
		writeUnavailable(w, cluster.ErrNotLeader)
		return
	}
	status, body, err := s.removeMember(r, id, cluster.RemoveOptions{Force: force, Leaving: true})
	if err != nil {
		writeFailed(w, err)
		return
	}
	writeJSON(w, status, body)
}

// removeMember runs a removal on the leader. Refusals are answers (409 and
// 404 with the reason); ErrNotLeader goes back to leaderWrite, which
// forwards the request to the new leader.
func (s *Server) removeMember(r *http.Request, id string, opts cluster.RemoveOptions) (int, any, error) {
	ctx, cancel := context.WithTimeout(r.Context(), commitTimeout)
	defer cancel()
	removed, err := s.node.RemoveMember(ctx, id, opts)
	if err != nil {
		if status, body := membershipError(err); status != http.StatusServiceUnavailable {
			return status, body, nil
		}
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"node": id, "removed": removed}, nil
}

// membershipError maps a failed membership change to its answer: a refusal
// is final (409), an unknown node is 404, anything else may pass (503).
func membershipError(err error) (int, map[string]string) {
	body := map[string]string{"error": err.Error()}
	switch {
	case errors.Is(err, cluster.ErrRefused):
		return http.StatusConflict, body
	case errors.Is(err, cluster.ErrUnknownMember):
		return http.StatusNotFound, body
	}
	return http.StatusServiceUnavailable, body
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
