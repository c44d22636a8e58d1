package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// Node is what the API needs from the cluster, in the parts its routes
// use, each declared where it is used.
type Node interface {
	Writes     // heartbeats, pings and management writes (forward.go)
	Topology   // who is who, and readiness (handlers.go)
	Progress   // how far Raft got, for the status page (dashboard_view.go)
	Membership // members.go
	Backups    // snapshot.go
	Configs    // config.go
	// InternalHandler answers the routes only the cluster's nodes call
	// (internal.go).
	InternalHandler(auth cluster.InternalAuth) http.Handler
}

// State is the replicated state the read API serves.
type State interface {
	Service(id string) (fsm.Service, bool)
	Services() []fsm.Service
	// Defaults is what a service defined through the API starts from.
	Defaults() fsm.Definition
	// Events is one service's history; AllEvents every service's.
	Events(id string, since int64) ([]fsm.Record, bool)
	AllEvents(since int64, after uint64, limit int) ([]fsm.ServiceRecord, bool)
	// ConfigInfo describes the committed configuration.
	ConfigInfo() fsm.ConfigInfo
	// Uptime and Timeline read a service's history (uptime.go).
	glance
}

// Limits on what a request may carry.
const (
	maxHeartbeatBody = 64 << 10
	// commitTimeout bounds how long a heartbeat request waits for its
	// commit; a load balancer's retry elsewhere is better than a hang.
	commitTimeout = 10 * time.Second
)

// Server routes HTTP requests to the node and its state.
type Server struct {
	node    Node
	state   State
	log     *slog.Logger
	mux     *mux.Router
	metrics *metrics
	// internal answers /v1/internal/*, the cluster's own routes (internal.go).
	internal http.Handler
	access   access // tokens and known actions (auth.go)
	// maxSnapshotBody caps a backup sent for restore (snapshot.go).
	maxSnapshotBody int64
	// readTimeout and writeTimeout bound each request (timeouts.go).
	readTimeout, writeTimeout time.Duration
	// parseConfig reads config files sent to PUT /v1/config (config.go).
	parseConfig ConfigParser
}

// New returns the API's handler.
func New(node Node, state State, log *slog.Logger, opts ...Option) *Server {
	s := &Server{node: node, state: state, log: log, mux: mux.NewRouter(),
		metrics: newMetrics()}
	r := s.mux
	// Ids are checked by the handlers; cleaning would turn "/v1/heartbeat/.."
	// into a redirect elsewhere instead of the 400 it deserves.
	r.SkipClean(true)
	r.HandleFunc("/heartbeat", s.handleHeartbeatQuery).Methods(http.MethodGet, http.MethodPost, http.MethodHead)
	r.HandleFunc("/v1/heartbeat/{id}", s.handleHeartbeatPath).Methods(http.MethodPost)
	r.HandleFunc("/v1/heartbeat/", s.handleHeartbeatPath).Methods(http.MethodPost)
	s.internalRoutes(r) // /v1/internal/*, the cluster's own (httpapi/internal.go)
	s.pingRoutes(r)     // the healthchecks.io-compatible /ping/{id}/... (httpapi/ping.go)
	// Alertmanager's webhook, as a dead man's switch (httpapi/alertmanager.go).
	r.HandleFunc("/v1/alertmanager/{id}", s.handleAlertmanager).Methods(http.MethodPost)
	r.HandleFunc("/v1/services", s.handleServices).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/services/{id}", s.handleService).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/services/{id}/pause", s.leaderWrite(s.handlePause)).Methods(http.MethodPost)
	r.HandleFunc("/v1/services/{id}/resume", s.leaderWrite(s.handleResume)).Methods(http.MethodPost)
	s.windowRoutes(r)  // pause and resume by tag (httpapi/windows.go)
	s.badgeRoutes(r)   // status badges by tag (httpapi/badges.go)
	s.serviceRoutes(r) // PUT and DELETE a service, and the event history (httpapi/services.go)
	r.HandleFunc("/v1/cluster", s.handleCluster).Methods(http.MethodGet, http.MethodHead)
	s.membershipRoutes(r) // leave, remove, status (httpapi/members.go)
	s.snapshotRoutes(r)   // backup and restore (httpapi/snapshot.go)
	s.configRoutes(r)     // the committed configuration (httpapi/config.go)
	// The status page, its assets and GET /v1/stream (httpapi/dashboard.go).
	s.dashboardRoutes(r)
	r.HandleFunc("/healthz", s.handleHealth).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", s.handleReady).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(LeaderHealthPath, s.handleLeaderHealth).Methods(http.MethodGet, http.MethodHead) // leader_health.go
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route: "+r.URL.Path)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
	})
	for _, o := range opts {
		o(s)
	}
	return s
}

// ServeHTTP implements http.Handler. Heartbeats, nearly all of the traffic,
// go straight to their handler, and the internal routes to theirs: the
// router would match them against its routes by regular expression and
// copy a heartbeat's request to carry its id.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w, r = closeUnread(w, r)
	s.setDeadlines(w, r)
	if id, ok := heartbeatPathID(r); ok {
		s.heartbeat(w, r, id, s.metrics.receivedV1)
		return
	}
	if strings.HasPrefix(r.URL.Path, cluster.InternalPrefix) {
		s.internal.ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// heartbeatPathID is the id of POST /v1/heartbeat/{id}, as the router
// would match it (one path segment, not empty); ok is false for any other
// request, which the router then takes.
func heartbeatPathID(r *http.Request) (id string, ok bool) {
	const prefix = "/v1/heartbeat/"
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, prefix) {
		return "", false
	}
	id = r.URL.Path[len(prefix):]
	if id == "" || strings.IndexByte(id, '/') >= 0 {
		return "", false
	}
	return id, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": boundMessage(msg)})
}
