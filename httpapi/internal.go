package httpapi

import (
	"net/http"

	"github.com/watchdog-ha/watchdog/cluster"
)

// internal guards a route only the cluster's own nodes call
// (/v1/internal/*: forwarded heartbeats, status polls, leave requests). The
// HTTP port is open to every client of the API, so such a request must be
// signed with the cluster secret (cluster.PeerAuthHeader); anything else is
// a 401, whatever tokens are configured, and reaches no handler.
func (s *Server) internal(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.node.Peer(r); !ok {
			w.Header().Set("WWW-Authenticate", cluster.PeerAuthHeader+` realm="watchdog cluster"`)
			writeError(w, http.StatusUnauthorized, "internal route: only the cluster's nodes may call it")
			return
		}
		h(w, r)
	}
}
