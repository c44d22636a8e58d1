package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
	"github.com/watchdog-ha/watchdog/watcher"
)

// Local describes this node's config file for the comparison with the
// committed configuration (cluster/configstate.go).
func (c *AgentConfig) Local() *cluster.LocalConfig {
	local := &cluster.LocalConfig{File: !c.NoConfigFile, ActionsHash: actionsHash(c.File.Actions),
		Actions: slices.Sorted(maps.Keys(c.File.Actions))}
	if local.File {
		local.Hash = fsm.ConfigHash(*c.File.Desired())
	}
	return local
}

// Desired is the part of the file the cluster replicates: defaults and
// service definitions.
func (f *FileConfig) Desired() *fsm.Configure {
	c := &fsm.Configure{Defaults: definition(f.Defaults), Services: map[string]fsm.Definition{},
		HistoryPerService: f.HistoryPerService, ActionsHash: actionsHash(f.Actions)}
	for id, s := range f.Services {
		c.Services[id] = definition(s)
	}
	return c
}

func definition(s ServiceConfig) fsm.Definition {
	def := fsm.Definition{Timeout: time.Duration(s.Timeout), Actions: s.Actions, OnRecovered: s.OnRecovered,
		Grace: time.Duration(s.Grace), Repeat: time.Duration(s.Repeat), MaxRepeats: s.MaxRepeats,
		FlapThreshold: s.FlapThreshold, FlapWindow: time.Duration(s.FlapWindow), Tags: s.Tags, Description: s.Description}
	scheduleOf(s, &def)
	return def
}

// ParseApplied is the leader's parser for PUT /v1/config: the whole file
// is validated as a node would (file:line errors), but it came from the
// network, so the files it names are not read and node-local settings
// (addresses, tokens, TLS) are not checked. Only what the cluster
// replicates is kept, with the hash of the file's action definitions.
func ParseApplied(data []byte, name string) (fsm.Configure, error) {
	cfg, err := parseConfig(&parser{file: name, remote: true}, data)
	if err != nil {
		return fsm.Configure{}, err
	}
	return *cfg.Desired(), nil
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
