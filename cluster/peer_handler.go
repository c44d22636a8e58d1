package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/watchdog-ha/watchdog/fsm"
)

// InternalAuth is what the API adds to a peer's signature on the internal
// routes: the credentials of whoever the call acts for. Each check answers
// the request itself when it refuses it; nil admits.
type InternalAuth struct {
	// Heartbeats checks a forwarded batch: the follower sends the ping
	// token its own clients had to show, so this route is no way around it.
	Heartbeats func(w http.ResponseWriter, r *http.Request) bool
	// Leave checks a leave request: the token of any membership change.
	Leave func(w http.ResponseWriter, r *http.Request) bool
}

// InternalHandler answers the internal routes (InternalPrefix) of this
// node. The HTTP port is open to every client of the API, so each request
// must be signed with the cluster secret (PeerAuthHeader); anything else is
// a 401, whatever tokens are configured, and reaches nothing.
func (n *Node) InternalHandler(auth InternalAuth) http.Handler {
	admit := func(http.ResponseWriter, *http.Request) bool { return true }
	if auth.Heartbeats == nil {
		auth.Heartbeats = admit
	}
	if auth.Leave == nil {
		auth.Leave = admit
	}
	return &internalHandler{n: n, auth: auth}
}

type internalHandler struct {
	n    *Node
	auth InternalAuth
}

func (h *internalHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	peer, ok := h.n.Peer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", PeerAuthHeader+` realm="watchdog cluster"`)
		writePeerError(w, http.StatusUnauthorized, "internal route: only the cluster's nodes may call it")
		return
	}
	route := func(methods ...string) bool {
		for _, m := range methods {
			if r.Method == m {
				return true
			}
		}
		writePeerError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
		return false
	}
	switch r.URL.Path {
	case ForwardPath:
		if route(http.MethodPost) {
			h.heartbeats(w, r)
		}
	case ForwardStreamPath:
		if route(http.MethodGet) {
			h.forwardStream(w, r, peer)
		}
	case StatusPath:
		if route(http.MethodGet, http.MethodHead) {
			writePeerJSON(w, http.StatusOK, h.n.Status())
		}
	case LeavePath:
		if route(http.MethodPost) {
			h.leave(w, r, peer)
		}
	default:
		writePeerError(w, http.StatusNotFound, "no such route: "+r.URL.Path)
	}
}

// maxForwardedBytes bounds a forwarded batch of maxIDs ids, one per line.
func maxForwardedBytes(maxIDs int) int64 { return int64(maxIDs) * (fsm.MaxIDLen + 1) }

// heartbeats commits a follower's batch here. It never forwards again: if
// this node is not the leader the follower hears 503, and its clients
// retry. A batch over batch_size ids is refused whole (413), never cut.
func (h *internalHandler) heartbeats(w http.ResponseWriter, r *http.Request) {
	if !h.auth.Heartbeats(w, r) {
		return
	}
	maxIDs := h.n.cfg.MaxBatch
	var body []byte
	var err error
	if limit := maxForwardedBytes(maxIDs); r.ContentLength > limit {
		// Refused before a byte of it is read, so the answer comes at once.
		err = &http.MaxBytesError{Limit: limit}
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	}
	// AsType rather than As, whose target escapes: one allocation less
	// per batch.
	tooBig, isTooBig := errors.AsType[*http.MaxBytesError](err)
	switch {
	case isTooBig:
		writePeerError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("batch larger than %d bytes (batch_size %d ids)", tooBig.Limit, maxIDs))
		return
	case err != nil:
		writePeerError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	ids, err := parseForwardBody(body, maxIDs)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errBatchTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		writePeerError(w, status, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.n.cfg.ApplyTimeout)
	defer cancel()
	err = h.n.CommitHeartbeats(ctx, ids)
	refused, isRefused := errors.AsType[*RefusedError](err)
	switch {
	case isRefused:
		// The others are committed: the follower answers each request.
		writePeerJSON(w, ForwardRefusedStatus, ForwardRefusedBody{Error: err.Error(), Refused: refused.Reasons()})
	case err != nil:
		status, msg := peerFailure(err, "heartbeats not committed in time")
		writePeerError(w, status, msg)
	default:
		w.WriteHeader(http.StatusOK) // no body: the status says it all
	}
}

var errBatchTooLarge = errors.New("batch too large")

// parseForwardBody reads a batch's ids, one per line, at most maxIDs.
// They are slices of one string made of the body: one allocation rather
// than one per id (and a slice of lines). Nothing keeps them past the
// batch's commit, so the body is not held on to.
func parseForwardBody(body []byte, maxIDs int) ([]string, error) {
	body = bytes.TrimSuffix(body, []byte("\n"))
	if len(body) == 0 {
		return nil, errors.New("no service ids")
	}
	n := bytes.Count(body, []byte("\n")) + 1
	if n > maxIDs {
		return nil, fmt.Errorf("%w: %d ids, at most %d (batch_size)", errBatchTooLarge, n, maxIDs)
	}
	ids := make([]string, 0, n)
	rest := string(body)
	for i := 1; ; i++ {
		line, after, more := strings.Cut(rest, "\n")
		id := strings.TrimSuffix(line, "\r")
		if !fsm.ValidID(id) {
			return nil, fmt.Errorf("line %d: invalid service id %s", i, fsm.QuoteInput(id))
		}
		ids = append(ids, id)
		if !more {
			return ids, nil
		}
		rest = after
	}
}

// leave is a leaving node asking the leader to remove it. Like forwarded
// heartbeats it is never forwarded again: the leaving node finds the new
// leader and asks again. A node may retire only itself: the node removed is
// the one whose credentials signed the request, and the leader removes it
// only once that node, asked directly, says it is leaving.
func (h *internalHandler) leave(w http.ResponseWriter, r *http.Request, id string) {
	if !h.auth.Leave(w, r) {
		return
	}
	q := r.URL.Query()
	force, err := false, error(nil)
	if v := q.Get("force"); v != "" {
		if force, err = strconv.ParseBool(v); err != nil {
			err = fmt.Errorf("force=%q: want true or false", v)
		}
	}
	switch {
	case !fsm.ValidID(id):
		writePeerError(w, http.StatusBadRequest, fmt.Sprintf("invalid node id %q", id))
		return
	case q.Has("id") && q.Get("id") != id:
		writePeerError(w, http.StatusForbidden, fmt.Sprintf("%s may ask only for its own removal, not for %q's", id, q.Get("id")))
		return
	case err != nil:
		writePeerError(w, http.StatusBadRequest, err.Error())
		return
	case !h.n.IsLeader():
		writePeerError(w, http.StatusServiceUnavailable, ErrNotLeader.Error())
		return
	}
	// A removal may take a configuration change and its commit.
	ctx, cancel := context.WithTimeout(r.Context(), 2*h.n.cfg.ApplyTimeout)
	defer cancel()
	removed, err := h.n.RemoveMember(ctx, id, RemoveOptions{Force: force, Leaving: true})
	if err != nil {
		status, msg := peerFailure(err, "removal not committed in time (it may still commit; retrying is safe)")
		writePeerError(w, status, msg)
		return
	}
	writePeerJSON(w, http.StatusOK, map[string]any{"node": id, "removed": removed})
}

// peerFailure is the internal routes' one mapping of a failed commit or
// removal to its answer. Refusals of a membership change are final (409,
// 404); anything else did not commit and is 503, worth a retry. late is
// what to say instead of the context's error when the wait ran out.
func peerFailure(err error, late string) (status int, msg string) {
	switch {
	case errors.Is(err, ErrRefused):
		return http.StatusConflict, err.Error()
	case errors.Is(err, ErrUnknownMember):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, late
	}
	return http.StatusServiceUnavailable, err.Error()
}
