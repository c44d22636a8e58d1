package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/watchdog-ha/watchdog/cluster"
)

// Limits and defaults of the config file. The bounds keep obvious typos
// ("1ms" for "1m", "100h" for "100s") from being accepted silently.
const (
	defaultCheckInterval  = 250 * time.Millisecond
	minCheckInterval      = 10 * time.Millisecond
	maxCheckInterval      = time.Minute
	defaultServiceTimeout = 10 * time.Second
	minServiceTimeout     = 100 * time.Millisecond
	maxServiceTimeout     = 30 * 24 * time.Hour
	defaultActionTimeout  = 30 * time.Second
	maxActionTimeout      = time.Hour
	// A dead server is reaped after dead_server_reap_after (default
	// cluster.DefaultReapAfter, 72h). The bounds catch unit typos; tests
	// use seconds.
	minReapAfter = time.Second
	maxReapAfter = 365 * 24 * time.Hour

	// builtinLogAction always exists, so a config that defines no actions
	// still has something sensible to do when a service goes down.
	builtinLogAction = "log"
)

// Duration is a time.Duration written as a Go duration string ("3s", "1m30s") in YAML.
type Duration time.Duration

// UnmarshalYAML insists on a unit: a bare number is ambiguous and a likely
// mistake. Errors are TypeErrors so yaml.v3 reports them with their line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{
			fmt.Sprintf("line %d: expected a duration such as \"3s\", got %s", n.Line, describeNode(n)),
		}}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{
			fmt.Sprintf("line %d: invalid duration %q: write a number with a unit, such as \"3s\" or \"1m30s\"", n.Line, n.Value),
		}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the same string form UnmarshalYAML reads, so a config
// survives a round trip.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String drops the zero minutes and seconds time.Duration prints ("1m" rather
// than "1m0s") because these strings end up in error messages.
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// FileConfig is the cluster-wide config file. After ParseConfig every default
// has been applied: services carry their effective timeout and action lists,
// and Actions holds the built-in "log" action too.
type FileConfig struct {
	NodeID          string                   `yaml:"node_id"`
	HTTPAddr        string                   `yaml:"http_addr"`
	RaftAddr        string                   `yaml:"raft_addr"`
	GossipAddr      string                   `yaml:"gossip_addr"`
	DataDir         string                   `yaml:"data_dir"`
	Join            []string                 `yaml:"join"`
	BootstrapExpect int                      `yaml:"bootstrap_expect"`
	LogLevel        string                   `yaml:"log_level"`
	CheckInterval   Duration                 `yaml:"check_interval"`
	Defaults        ServiceConfig            `yaml:"defaults"`
	Actions         map[string]ActionConfig  `yaml:"actions"`
	Services        map[string]ServiceConfig `yaml:"services"`
	// DeadServerReapAfter is how long a server may be dead before the
	// leader removes it from the Raft configuration.
	DeadServerReapAfter Duration `yaml:"dead_server_reap_after"`
	// APIToken guards the management API; after ParseConfig it holds the
	// token whether it was given inline or in APITokenFile.
	APIToken     Secret `yaml:"api_token"`
	APITokenFile string `yaml:"api_token_file"`
	// PingToken, when set, guards heartbeats (policy.go).
	PingToken     Secret `yaml:"ping_token"`
	PingTokenFile string `yaml:"ping_token_file"`
	// HistoryPerService bounds each service's replicated event history.
	HistoryPerService int `yaml:"history_per_service"`
	// ServiceMetrics exports a status and an age per service at /metrics
	// (cmd/watchdog/agent_metrics.go): off by default, since a large fleet
	// makes many series.
	ServiceMetrics bool `yaml:"service_metrics"`
	// Group commit (batch.go).
	BatchSize   int      `yaml:"batch_size"`
	BatchWindow Duration `yaml:"batch_window"`
	// Limits against hostile or broken clients (limits.go).
	// MaxServices caps the services the cluster holds (0: no cap); beyond
	// it new ids are refused with 429. AutoRegister false refuses
	// heartbeats for ids neither the file nor the API defined (404).
	MaxServices       int      `yaml:"max_services"`
	AutoRegister      bool     `yaml:"auto_register"`
	ReadHeaderTimeout Duration `yaml:"http_read_header_timeout"`
	ReadTimeout       Duration `yaml:"http_read_timeout"`
	WriteTimeout      Duration `yaml:"http_write_timeout"`
	IdleTimeout       Duration `yaml:"http_idle_timeout"`
	// MaxConnections caps the HTTP connections a node holds open (0: no
	// cap); -max-connections and $WATCHDOG_MAX_CONNECTIONS override it.
	MaxConnections int `yaml:"max_connections"`
	// Encryption and authentication between nodes and for clients
	// (tls.go). Relative paths are relative to the config file;
	// after ParseConfig they are resolved.
	TLSCertFile    string `yaml:"tls_cert_file"`
	TLSKeyFile     string `yaml:"tls_key_file"`
	TLSCAFile      string `yaml:"tls_ca_file"`
	VerifyIncoming bool   `yaml:"verify_incoming"`
	GossipKey      Secret `yaml:"gossip_key"`
	GossipKeyFile  string `yaml:"gossip_key_file"`
	// ClusterSecret authenticates the nodes to each other (secret.go).
	ClusterSecret     Secret `yaml:"cluster_secret"`
	ClusterSecretFile string `yaml:"cluster_secret_file"`
	// RaftLogStore and EnableDebug: how this node runs (flags_node.go).
	RaftLogStore string `yaml:"raft_log_store"`
	EnableDebug  bool   `yaml:"enable_debug"`
}

// ServiceConfig is how long a service may stay silent and what to run when
// it goes down (Actions) or comes back (OnRecovered).
type ServiceConfig struct {
	Timeout     Duration `yaml:"timeout"`
	Actions     []string `yaml:"actions"`
	OnRecovered []string `yaml:"on_recovered"`
	// The restart policy and the rest (policy.go).
	Grace         Duration `yaml:"grace"`
	Repeat        Duration `yaml:"repeat"`
	MaxRepeats    int      `yaml:"max_repeats"`
	FlapThreshold int      `yaml:"flap_threshold"`
	FlapWindow    Duration `yaml:"flap_window"`
	Tags          []string `yaml:"tags"`
	Description   string   `yaml:"description"`
	// A cron schedule instead of a timeout, and dependencies
	// (schedule.go).
	Schedule  string   `yaml:"schedule"`
	TZ        string   `yaml:"tz"`
	DependsOn []string `yaml:"depends_on"`
}

// loadConfig reads the file and calls ParseConfig.
func loadConfig(path string) (*FileConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig parses and validates; name is used in error messages (the file path).
// All problems found are reported together, each as "name:line: path: message".
func ParseConfig(data []byte, name string) (*FileConfig, error) {
	return parseConfig(&parser{file: name}, data)
}

func parseConfig(p *parser, data []byte) (*FileConfig, error) {
	if p.file == "" {
		p.file = "config"
	}
	if p.parseDocument(data); p.list != nil {
		return nil, p.err()
	}
	cfg := &FileConfig{}
	if p.root != nil {
		p.decode(p.root, reflect.ValueOf(cfg).Elem(), "")
		if err := p.err(); err != nil {
			return nil, err // validating half-decoded values would only add noise
		}
	}
	p.checkNode(cfg)
	p.duration(&cfg.CheckInterval, defaultCheckInterval, minCheckInterval, maxCheckInterval, "check_interval")
	p.duration(&cfg.DeadServerReapAfter, cluster.DefaultReapAfter, minReapAfter, maxReapAfter, "dead_server_reap_after")
	p.duration(&cfg.Defaults.Timeout, defaultServiceTimeout, minServiceTimeout, maxServiceTimeout,
		"defaults", "timeout")
	if cfg.Defaults.Actions == nil {
		cfg.Defaults.Actions = []string{builtinLogAction}
	}
	p.checkActions(cfg)
	if !p.remote {
		p.checkAPIToken(cfg)
		p.checkPingToken(cfg)
		p.checkTLS(cfg)
		p.checkGossipKey(cfg)
		p.checkClusterSecret(cfg)
	}
	p.resolveServices(cfg)
	p.resolvePolicies(cfg)
	p.checkSchedules(cfg)
	p.checkBatching(cfg)
	p.checkLimits(cfg)
	if err := p.err(); err != nil {
		return nil, err
	}
	if cfg.Actions == nil {
		cfg.Actions = make(map[string]ActionConfig)
	}
	cfg.Actions[builtinLogAction] = ActionConfig{Log: &struct{}{}, Timeout: Duration(defaultActionTimeout)}
	return cfg, nil
}

// parseDocument sets p.root to the top-level mapping, leaving it nil when
// the file holds no settings (empty, only comments, or an explicit null).
func (p *parser) parseDocument(data []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc, extra yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			p.syntaxError(err, data)
		}
		return
	}
	if err := dec.Decode(&extra); err == nil {
		p.addf(extra.Line, "", "the file holds more than one YAML document; put all settings in one")
		return
	} else if !errors.Is(err, io.EOF) {
		p.syntaxError(err, data)
		return
	}
	if len(doc.Content) == 0 || isNull(unalias(doc.Content[0])) {
		return
	}
	root := unalias(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.addf(root.Line, "", "the top level must be a mapping of settings, got %s", describeNode(root))
		return
	}
	p.root = root
}

// syntaxError rewrites yaml.v3's "yaml: line N: msg" into our file:line form.
// yaml.v3 names no line for errors on the first line nor for bytes it cannot
// read at all; those get the line of the first such byte, or line 1.
func (p *parser) syntaxError(err error, data []byte) {
	line, msg := splitLine(strings.TrimPrefix(err.Error(), "yaml: "), 0)
	if line == 0 {
		line = badByteLine(data)
	}
	p.addf(line, "", "%s", msg)
}

// badByteLine is the line of the first control character or invalid UTF-8
// in data, or 1 when there is none.
func badByteLine(data []byte) int {
	line := 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		switch {
		case r == '\n':
			line++
		case r == utf8.RuneError && size <= 1, r < 0x20 && r != '\t' && r != '\r', r == 0x7f:
			return line
		}
		data = data[size:]
	}
	return 1
}

// splitLine separates a yaml.v3 "line N: msg" prefix; def is used without one.
func splitLine(s string, def int) (int, string) {
	var n int
	if _, err := fmt.Sscanf(s, "line %d:", &n); err == nil {
		_, msg, _ := strings.Cut(s, ": ")
		return n, msg
	}
	return def, s
}

// configError is one problem with the file; line orders the report.
type configError struct {
	line int
	text string
}

func (e *configError) Error() string { return e.text }

// parser decodes and validates one file. It collects every problem rather
// than stopping at the first, so an operator can fix a file in one go.
type parser struct {
	file string
	root *yaml.Node // nil for a file without settings
	list []*configError
	// remote: the file came from the network (ParseApplied): the files
	// it names are not read and node-local settings are not checked.
	remote bool
}

// addf records "file:line: path: message"; line 0 and path "" are left out.
func (p *parser) addf(line int, path, format string, args ...any) {
	loc := p.file
	if line > 0 {
		loc += ":" + strconv.Itoa(line)
	}
	if path != "" {
		loc += ": " + path
	}
	p.list = append(p.list, &configError{line: line, text: loc + ": " + fmt.Sprintf(format, args...)})
}

// err reports the problems in file order, whatever order they were found in.
func (p *parser) err() error {
	slices.SortStableFunc(p.list, func(a, b *configError) int { return cmp.Compare(a.line, b.line) })
	errs := make([]error, len(p.list))
	for i, e := range p.list {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// duration applies def when the setting was omitted (or null), otherwise
// checks that it is positive and lies within [lo, hi].
func (p *parser) duration(d *Duration, def, lo, hi time.Duration, keys ...string) {
	if _, val, ok := p.find(keys...); !ok || isNull(unalias(val)) {
		*d = Duration(def)
		return
	}
	path, line := strings.Join(keys, "."), p.line(keys...)
	switch {
	case *d <= 0:
		p.addf(line, path, "must be positive, got %s", *d)
	case *d < Duration(lo):
		p.addf(line, path, "%s is too short: must be at least %s", *d, Duration(lo))
	case *d > Duration(hi):
		p.addf(line, path, "%s is too long: must be at most %s", *d, Duration(hi))
	}
}

// checkRefs makes sure every action a list names exists, so a typo is found
// when the file is loaded rather than when a service is already down.
func (p *parser) checkRefs(cfg *FileConfig, names []string, keys ...string) {
	path := strings.Join(keys, ".")
	seen := make(map[string]bool)
	for i, name := range names {
		line := p.line(slices.Concat(keys, []string{strconv.Itoa(i)})...)
		if _, ok := cfg.Actions[name]; !ok && name != builtinLogAction {
			known := append([]string{builtinLogAction}, slices.Sorted(maps.Keys(cfg.Actions))...)
			p.addf(line, path, "unknown action %q (defined: %s)", name, strings.Join(known, ", "))
		}
		if seen[name] {
			p.addf(line, path, "action %q is listed more than once", name)
		}
		seen[name] = true
	}
}

// resolveServices fills in what each service inherits from defaults. Lists
// are copied so that changing one service never changes another.
func (p *parser) resolveServices(cfg *FileConfig) {
	for _, id := range slices.Sorted(maps.Keys(cfg.Services)) {
		s := cfg.Services[id]
		if !validID(id) {
			p.addf(p.keyLine("services", id), "services", "invalid service id %q: %s", id, idRule)
		}
		inherited := time.Duration(cfg.Defaults.Timeout)
		if !p.unschedule(&s, id) { // a scheduled service has no timeout (schedule.go)
			p.duration(&s.Timeout, inherited, minServiceTimeout, maxServiceTimeout, "services", id, "timeout")
		}
		if s.Actions == nil {
			s.Actions = slices.Clone(cfg.Defaults.Actions)
		} else {
			p.checkRefs(cfg, s.Actions, "services", id, "actions")
		}
		if s.OnRecovered == nil {
			s.OnRecovered = slices.Clone(cfg.Defaults.OnRecovered)
		} else {
			p.checkRefs(cfg, s.OnRecovered, "services", id, "on_recovered")
		}
		cfg.Services[id] = s
	}
}
