package httpapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/cluster"
)

// internalRoutes mounts the cluster's own handler of the routes only its
// nodes call (cluster.InternalPrefix: forwarded heartbeats, status polls,
// leave requests), which refuses any request not signed with the cluster
// secret. The API adds its tokens: a forwarded batch carries the ping
// token its clients had to show, a leave request the API token.
// ServeHTTP sends them there before the router (server.go): a forwarded
// batch is most of a leader's requests after heartbeats.
func (s *Server) internalRoutes(r *mux.Router) {
	s.internal = s.node.InternalHandler(cluster.InternalAuth{
		Heartbeats: func(w http.ResponseWriter, r *http.Request) bool { return allowed(w, r, s.access.pingToken, false) },
		Leave:      func(w http.ResponseWriter, r *http.Request) bool { return allowed(w, r, s.access.apiToken, false) },
	})
	r.PathPrefix(cluster.InternalPrefix).Handler(s.internal)
}
