package httpapi

import (
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"
)

// DebugPrefix is where WithDebug serves Go's profiler.
const DebugPrefix = "/debug/pprof/"

// WithDebug serves Go's profiler (net/http/pprof) under DebugPrefix, as
// Consul's enable_debug does: CPU and heap profiles, goroutine dumps,
// traces. Without it the routes do not exist (404). They are behind the
// API token whenever one is required, since a goroutine dump or the
// command line may show what an operator would not publish, and a CPU
// profile costs the node a few percent while it runs.
func WithDebug() Option {
	return func(s *Server) {
		r := s.mux
		r.HandleFunc(DebugPrefix+"cmdline", s.debug(pprof.Cmdline)).Methods(http.MethodGet)
		r.HandleFunc(DebugPrefix+"profile", s.debug(pprof.Profile)).Methods(http.MethodGet)
		r.HandleFunc(DebugPrefix+"symbol", s.debug(pprof.Symbol)).Methods(http.MethodGet, http.MethodPost)
		r.HandleFunc(DebugPrefix+"trace", s.debug(pprof.Trace)).Methods(http.MethodGet)
		// The index and every named profile: heap, goroutine, allocs, ...
		r.PathPrefix(DebugPrefix).HandlerFunc(s.debug(pprof.Index)).Methods(http.MethodGet)
	}
}

// debug checks the API token, then lets a profile or trace that runs for
// ?seconds= write its answer after that long: the API's write timeout
// would otherwise cut it off.
func (s *Server) debug(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !allowed(w, r, s.access.apiToken, false) {
			return
		}
		if s.writeTimeout > 0 {
			sec, err := strconv.ParseInt(r.FormValue("seconds"), 10, 64)
			if err != nil || sec <= 0 {
				sec = 30 // pprof's default for a CPU profile
			}
			d := time.Duration(min(sec, 3600))*time.Second + s.writeTimeout
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
		}
		h(w, r)
	}
}
