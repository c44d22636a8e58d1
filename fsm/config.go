package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
)

// The committed configuration. What the cluster replicates of the operator's
// config file is a Configure: the defaults, the services the file defines
// and the history bound. Action definitions (commands, URLs, credentials)
// stay in each node's own file; the committed configuration only names
// actions, and carries the hash of the definitions it was applied with so
// that a node whose actions differ can tell.
//
// Each Configure applied counts as a new generation. Generation 0 means the
// cluster has never committed a configuration: the first leader with a
// config file commits its file then, and from that moment the committed
// configuration is the cluster's, changed only deliberately (see
// cluster.Node.CommitConfig and PUT /v1/config).

// ConfigInfo describes the committed configuration.
type ConfigInfo struct {
	// Generation counts the configurations committed; 0: none yet.
	Generation uint64 `json:"generation"`
	// Hash is ConfigHash of the committed configuration, "" when none.
	Hash string `json:"hash"`
	// ActionsHash is the hash of the action definitions of the file the
	// configuration was applied from, as the proposer computed it.
	ActionsHash string `json:"actions_hash,omitempty"`
	// Actions are the action names the configuration refers to (the
	// defaults' and every configured service's), sorted.
	Actions []string `json:"actions"`
}

// hashLen is how many hex digits of a SHA-256 a hash keeps: 64 bits tell
// configurations apart and stay readable in a table.
const hashLen = 16

// ConfigHash is a short, stable hash of what c replicates: defaults,
// services and the history bound (not At, not ActionsHash). Two files that
// replicate the same configuration have the same hash, whatever their
// layout, comments or node-local settings.
func ConfigHash(c Configure) string {
	// encoding/json sorts map keys, and every field of Definition has a
	// fixed form, so equal configurations encode to equal bytes.
	services := c.Services
	if services == nil {
		services = map[string]Definition{} // none is none, however it was written
	}
	b, err := json.Marshal(struct {
		Defaults          Definition            `json:"defaults"`
		Services          map[string]Definition `json:"services"`
		HistoryPerService int                   `json:"history_per_service"`
	}{c.Defaults, services, c.HistoryPerService})
	if err != nil {
		panic("fsm: hash configuration: " + err.Error()) // plain data: cannot happen
	}
	return ShortHash(b)
}

// ShortHash is the first hashLen hex digits of the SHA-256 of b.
func ShortHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:hashLen]
}

// ReferencedActions are the action names c refers to, sorted, each once.
func ReferencedActions(c Configure) []string {
	var out []string
	add := func(d Definition) {
		out = append(out, d.Actions...)
		out = append(out, d.OnRecovered...)
	}
	add(c.Defaults)
	for _, d := range c.Services {
		add(d)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ConfigInfo returns the committed configuration's description.
func (f *FSM) ConfigInfo() ConfigInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	info := f.config
	info.Actions = slices.Clone(info.Actions)
	return info
}

// ConfigGeneration is the committed configuration's generation (0: none).
func (f *FSM) ConfigGeneration() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.config.Generation
}

// noteConfig records that c was committed; it runs under the write lock.
func (f *FSM) noteConfig(c Configure) {
	f.config = ConfigInfo{Generation: f.config.Generation + 1, Hash: ConfigHash(c),
		ActionsHash: c.ActionsHash, Actions: ReferencedActions(c)}
}

// committedConfigure rebuilds the committed Configure from the state, for a
// restored snapshot; it runs under the write lock or before f is shared.
func (f *FSM) committedConfigure() Configure {
	c := Configure{Defaults: *f.defaults, HistoryPerService: f.historyN, Services: map[string]Definition{}}
	for id, s := range f.services {
		if s.Source == SourceConfig {
			c.Services[id] = *s.Def
		}
	}
	return c
}

// restoreConfig sets the configuration's description after a snapshot was
// read. A snapshot from before generations were kept says nothing about
// them: if its state shows a configuration (configured services or
// defaults other than the built-in ones), that counts as generation 1.
func (f *FSM) restoreConfig(generation uint64, actionsHash string) {
	c := f.committedConfigure()
	if generation == 0 && (len(c.Services) > 0 || !f.defaults.Equal(DefaultDefinition()) || f.historyN != 0) {
		generation = 1
	}
	if generation == 0 {
		f.config = ConfigInfo{}
		return
	}
	f.config = ConfigInfo{Generation: generation, Hash: ConfigHash(c), ActionsHash: actionsHash,
		Actions: ReferencedActions(c)}
}
