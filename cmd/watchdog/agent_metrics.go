package main

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/internal/buildinfo"
)

// newRegistry is the registry one agent's /metrics serves: the Go runtime,
// the process, and the services by status. Each agent has its own, so the
// agents of an in-process test cluster never collide, and nothing is
// registered globally. Registering fixed collectors in a fresh registry
// fails only on a programming error (two metrics of one name), which every
// test that starts an agent would show: hence MustRegister.
func newRegistry(state *fsm.FSM, perService bool) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newServiceCollector(state),
		buildInfoGauge(buildinfo.Read()),
	)
	if perService {
		reg.MustRegister(newPerServiceCollector(state, time.Now))
	}
	return reg
}

// perServiceCollector exports each service's status and the seconds since
// its last heartbeat, as healthchecks' per-check metrics do, at scrape
// time from this node's replica (service_metrics: true).
type perServiceCollector struct {
	state        *fsm.FSM
	now          func() time.Time
	status, ages *prometheus.Desc
}

func newPerServiceCollector(state *fsm.FSM, now func() time.Time) *perServiceCollector {
	return &perServiceCollector{state: state, now: now,
		status: prometheus.NewDesc("watchdog_service_status",
			"1 for the status a service has (up, new, down or paused), 0 for the others.", []string{"service", "status"}, nil),
		ages: prometheus.NewDesc("watchdog_service_seconds_since_heartbeat",
			"Seconds since the service's last heartbeat, at scrape time; absent for a new service, never heard from.", []string{"service"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *perServiceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.status
	ch <- c.ages
}

// Collect implements prometheus.Collector.
func (c *perServiceCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for _, s := range c.state.Services() {
		shown := s.Shown()
		for _, st := range [...]fsm.Status{fsm.StatusUp, fsm.StatusNew, fsm.StatusDown, fsm.StatusPaused} {
			v := 0.0
			if st == shown {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.status, prometheus.GaugeValue, v, s.ID, string(st))
		}
		if !s.New {
			age := now.Sub(time.Unix(0, s.LastSeen)).Seconds()
			ch <- prometheus.MustNewConstMetric(c.ages, prometheus.GaugeValue, max(age, 0), s.ID)
		}
	}
}

// buildInfoGauge is watchdog_build_info: 1, labelled with the build, so
// that a dashboard sees which nodes run what during a rolling upgrade.
func buildInfoGauge(b buildinfo.Info) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "watchdog_build_info",
		Help: "Always 1, labelled with the build this node runs: version, revision and Go version (from the binary's build information).",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision,
			"modified": strconv.FormatBool(b.Modified), "goversion": b.GoVersion},
	})
	g.Set(1)
	return g
}

// serviceCollector counts the services by status when scraped, from this
// node's replica: nothing is updated as entries are applied.
type serviceCollector struct {
	state *fsm.FSM
	desc  *prometheus.Desc
}

func newServiceCollector(state *fsm.FSM) *serviceCollector {
	return &serviceCollector{state: state, desc: prometheus.NewDesc("watchdog_services",
		"Services in this node's replica of the state, by status.", []string{"status"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *serviceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. Every known status is reported,
// 0 when no service has it, so that alerts on down services see a change
// from 0 rather than a series appearing.
func (c *serviceCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[fsm.Status]int{fsm.StatusUp: 0, fsm.StatusNew: 0, fsm.StatusDown: 0, fsm.StatusPaused: 0}
	for _, s := range c.state.Services() {
		counts[s.Shown()]++
	}
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(status))
	}
}

// configCollector exports how this node's config file compares with the
// committed configuration, so drift can be alerted on.
type configCollector struct {
	node                             *cluster.Node
	info, drift, missing, generation *prometheus.Desc
}

func newConfigCollector(node *cluster.Node) *configCollector {
	return &configCollector{node: node,
		info: prometheus.NewDesc("watchdog_config_info",
			"Always 1: the hash of this node's config file (none without one) and of the committed configuration (none before one is committed).",
			[]string{"hash", "committed_hash", "actions_hash"}, nil),
		drift: prometheus.NewDesc("watchdog_config_drift",
			"1 when this node's config file differs from the committed configuration, else 0.", nil, nil),
		missing: prometheus.NewDesc("watchdog_config_missing_actions",
			"Actions the committed configuration names that this node's config file does not define.", nil, nil),
		generation: prometheus.NewDesc("watchdog_config_generation",
			"Generation of the committed configuration as this node applied it (0: none).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *configCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.info
	ch <- c.drift
	ch <- c.missing
	ch <- c.generation
}

// Collect implements prometheus.Collector.
func (c *configCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.node.ConfigStatus()
	if st == nil {
		return
	}
	drift := 0.0
	if st.Drift {
		drift = 1
	}
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, noneIfEmpty(st.Hash),
		noneIfEmpty(st.CommittedHash), st.ActionsHash)
	ch <- prometheus.MustNewConstMetric(c.drift, prometheus.GaugeValue, drift)
	ch <- prometheus.MustNewConstMetric(c.missing, prometheus.GaugeValue, float64(len(st.Missing)))
	ch <- prometheus.MustNewConstMetric(c.generation, prometheus.GaugeValue, float64(st.Generation))
}

func noneIfEmpty(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
