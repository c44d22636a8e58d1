package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/watcher"
)

// localConfig describes this node's config file for the comparison with
// the committed configuration (cluster/configstate.go).
func localConfig(cfg *AgentConfig) *cluster.LocalConfig {
	local := &cluster.LocalConfig{File: !cfg.NoConfigFile, ActionsHash: actionsHash(cfg.File.Actions),
		Actions: slices.Sorted(maps.Keys(cfg.File.Actions))}
	if local.File {
		local.Hash = fsm.ConfigHash(*desiredConfig(cfg.File))
	}
	return local
}

// actionsHash is a short hash of the action definitions, the same for
// equal definitions. Secret values are left out: the hash is shown to
// anyone who may read /v1/cluster, and a hash of a short password could be
// checked against guesses; and a node reads its secret files where an
// applied file (PUT /v1/config) is not read. A changed secret is therefore
// not drift; a changed command, URL or secret file path is.
func actionsHash(actions map[string]ActionConfig) string {
	b, err := json.Marshal(redacted(reflect.ValueOf(actions)))
	if err != nil {
		panic(fmt.Sprintf("hash actions: %v", err)) // maps, strings and numbers: cannot happen
	}
	return fsm.ShortHash(b)
}

var secretType = reflect.TypeFor[watcher.Secret]()

// redacted is v as maps (sorted by encoding/json), slices and plain values,
// with every watcher.Secret replaced by whether it is set.
func redacted(v reflect.Value) any {
	if v.Type() == secretType {
		return "[secret]" // set or not: a node reads secret files, an applied file is not read
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return redacted(v.Elem())
	case reflect.Struct:
		out := map[string]any{}
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				out[f.Name] = redacted(v.Field(i))
			}
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[fmt.Sprint(k.Interface())] = redacted(v.MapIndex(k))
		}
		return out
	case reflect.Slice, reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = redacted(v.Index(i))
		}
		return out
	}
	return v.Interface()
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
