package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// Writes is what the routes that commit need from the node: heartbeats,
// pings, and the management writes leaderWrite runs.
type Writes interface {
	// HeartbeatID returns once the heartbeat of id is committed on a
	// quorum. One id, not a variadic list: a call through an interface
	// allocates the list (cluster.Node.HeartbeatID).
	HeartbeatID(ctx context.Context, id string) error
	// Apply commits a command and returns the FSM's response; it fails
	// with cluster.ErrNotLeader anywhere but on the leader.
	Apply(ctx context.Context, c fsm.Command) (any, error)
	// Reserve admits, on the leader, a service id a single command is
	// about to create (max_services, auto_register); release once applied.
	Reserve(id string, defining bool) (release func(), err error)
	IsLeader() bool
	// Now is the time to stamp into a command: on the leader, the
	// leadership's time, which the wall clock's steps do not move.
	Now() time.Time
	// ProxyToLeader sends a write to the leader and its answer back.
	ProxyToLeader(w http.ResponseWriter, r *http.Request, timeout time.Duration)
}

// write is the work of a mutating management route, run on the leader only:
// it returns the status and JSON body of its answer, or an error for
// writeFailed to map. Every write must be idempotent: after a timeout its
// outcome is unknown, and clients retry.
type write func(r *http.Request) (status int, body any, err error)

// maxWriteBody bounds what a management request may carry. The body is held
// in memory so that it can be sent on to the leader.
const maxWriteBody = 64 << 10

// forwardTimeout bounds a forwarded write: the leader's own commit timeout
// and a little for the hop.
const forwardTimeout = commitTimeout + 2*time.Second

// leaderWrite makes h a handler that runs on the leader: on a follower the
// request goes one hop to the leader and its answer comes back unchanged.
// This is the one place writes are routed, so every management route gets
// the same rules: the API token when one is set (401 otherwise, on any
// node), a request already forwarded is never forwarded again (503
// and Retry-After instead, so no request can loop), and a node that knows no
// leader answers 503 and Retry-After.
func (s *Server) leaderWrite(h write) http.HandlerFunc {
	return s.leaderWriteUpTo(maxWriteBody, h)
}

// leaderWriteUpTo is leaderWrite for a route whose body may be up to limit.
func (s *Server) leaderWriteUpTo(limit int64, h write) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Checked here and again on the leader (a forwarded request keeps
		// its Authorization header), before anything else is looked at.
		if !allowed(w, r, s.access.apiToken, false) {
			return
		}
		// A bad id is refused here, without a hop and without a leader.
		if id, ok := mux.Vars(r)["id"]; ok && !fsm.ValidID(id) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid service id %q: want 1-128 of A-Za-z0-9._- (not . or ..)", id))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			bodyError(w, err)
			return
		}
		if s.node.IsLeader() {
			r.Body = io.NopCloser(bytes.NewReader(body))
			status, v, err := h(r)
			switch {
			case err == nil:
				writeJSON(w, status, v)
				return
			case !errors.Is(err, cluster.ErrNotLeader):
				writeFailed(w, err)
				return
			}
			// Leadership moved while h ran. Raft refused the entry, so
			// nothing was committed: the request may go to the new leader.
		}
		s.forward(w, r, body)
	}
}

// forward sends a write to the leader through a reverse proxy.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	s.node.ProxyToLeader(w, r, forwardTimeout)
}
