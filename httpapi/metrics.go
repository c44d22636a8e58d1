package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Option configures a Server.
type Option func(*Server)

// WithMetrics serves the metrics g gathers at GET /metrics. Like the other
// reads it is answered by this node alone, never forwarded: each node is
// scraped for its own view. g is normally the agent's registry, with the
// Server's own Collector in it.
func WithMetrics(g prometheus.Gatherer) Option {
	return func(s *Server) {
		h := promhttp.HandlerFor(g, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
		})
		s.mux.Handle("/metrics", h).Methods(http.MethodGet)
	}
}

// metrics count the requests the API took.
type metrics struct {
	received      *prometheus.CounterVec
	receivedQuery prometheus.Counter // GET/POST/HEAD /heartbeat?id=
	receivedV1    prometheus.Counter // POST /v1/heartbeat/{id}
	receivedPing  prometheus.Counter // /ping/{id}[/signal], healthchecks' form
	// POST /v1/alertmanager/{id}, a firing notification
	receivedAlertmanager prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{received: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "watchdog_heartbeats_received_total",
		Help: "Heartbeats with a valid id received from clients by this node, by route form: query (/heartbeat?id=), v1 (/v1/heartbeat/{id}), ping (/ping/{id}, any signal) or alertmanager (/v1/alertmanager/{id}, a firing notification).",
	}, []string{"form"})}
	// Resolved once: a heartbeat then costs one atomic add, no label lookup.
	m.receivedQuery = m.received.WithLabelValues("query")
	m.receivedV1 = m.received.WithLabelValues("v1")
	m.receivedPing = m.received.WithLabelValues("ping")
	m.receivedAlertmanager = m.received.WithLabelValues("alertmanager")
	return m
}

// Collector exports what the API counted.
func (s *Server) Collector() prometheus.Collector { return s.metrics.received }
