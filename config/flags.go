package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/watchdog-ha/watchdog/cluster"
)

// Built-in defaults of the agent settings. They use loopback so that a node
// started without configuration is not reachable from the network.
const (
	defaultHTTPAddr   = "127.0.0.1:8080"
	defaultRaftAddr   = "127.0.0.1:8300"
	defaultGossipAddr = "127.0.0.1:8301"
	defaultLogLevel   = "info"
)

const (
	idRule       = `must match ^[A-Za-z0-9._-]{1,128}$ and not be "." or ".."`
	logLevelRule = "must be one of debug, info, warn, error"
)

// What an address is for decides why a wildcard host is refused.
const (
	roleHTTP   = "http"
	roleRaft   = "raft"
	roleGossip = "gossip"
	roleJoin   = "join"
)

// AgentConfig is everything `watchdog agent` runs with, each value taken from
// the first of: command-line flag, WATCHDOG_* environment variable, config
// file, built-in default.
type AgentConfig struct {
	NodeID          string
	HTTPAddr        string
	RaftAddr        string
	GossipAddr      string
	DataDir         string // empty only with Dev: the caller makes a temporary one
	Join            []string
	BootstrapExpect int // always 1 with Dev
	ConfigPath      string
	Dev             bool
	LogLevel        string
	File            *FileConfig // the parsed config file (all defaults when no -config)
	// NoConfigFile is true when no -config was given: File is then only
	// defaults, which the node never proposes as the cluster's
	// configuration.
	NoConfigFile bool
	// TLS, when set, is this node's certificate and the cluster's CA
	// (flags_tls.go); GossipKey, when set, encrypts gossip.
	TLS       *cluster.TLS
	GossipKey []byte
	// ClusterSecret, when set, authenticates the nodes to each other
	// (secret.go); else they derive or share one (cluster/secret.go).
	ClusterSecret []byte
	// OpenManagement leaves the mutating routes open when no api_token is
	// set, as -dev does; otherwise the agent guards them with the token the
	// cluster generates. Only -dev and in-process tests set it.
	OpenManagement bool
	// LogStore is the Raft log store a new data dir gets; "" keeps what the
	// data dir holds, else cluster.DefaultLogStore (flags_node.go).
	LogStore string
	// EnableDebug serves /debug/pprof/ behind the API token.
	EnableDebug bool
}

// ParseAgentFlags parses args (without the "agent" word) with env lookup injected for testability.
// It returns flag.ErrHelp for -h, after printing the usage to stderr.
func ParseAgentFlags(args []string, getenv func(string) string, stderr io.Writer) (*AgentConfig, error) {
	return parseAgentFlags(args, getenv, stderr, os.Hostname)
}

func parseAgentFlags(args []string, getenv func(string) string, stderr io.Writer,
	hostname func() (string, error)) (*AgentConfig, error) {
	fs := newAgentFlagSet(stderr)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: watchdog agent takes only flags (see -h)", fs.Arg(0))
	}
	r := &resolver{fs: fs, getenv: getenv, given: make(map[string]bool)}
	fs.Visit(func(f *flag.Flag) { r.given[f.Name] = true })

	cfg := &AgentConfig{ConfigPath: r.pick("config", "").val}
	var err error
	if cfg.ConfigPath != "" {
		r.fileName = cfg.ConfigPath
		cfg.File, err = loadConfig(cfg.ConfigPath)
	} else {
		cfg.NoConfigFile = true
		cfg.File, err = ParseConfig(nil, "defaults")
	}
	if err != nil {
		return nil, err
	}
	r.resolve(cfg, hostname)
	if err := errors.Join(r.errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

func newAgentFlagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("watchdog agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("node-id", "", "unique `id` of this node (default: the hostname)")
	fs.String("http-addr", "", "`host:port` of the HTTP API, advertised to peers (default "+defaultHTTPAddr+")")
	fs.String("raft-addr", "", "`host:port` for Raft traffic, advertised to peers (default "+defaultRaftAddr+")")
	fs.String("gossip-addr", "", "`host:port` for gossip, advertised to peers (default "+defaultGossipAddr+")")
	fs.String("data-dir", "", "`directory` for Raft state (required unless -dev)")
	fs.Var(&listFlag{}, "join", "gossip `host:port` of nodes to join; comma-separated, may be repeated")
	fs.Int("bootstrap-expect", 0, "bootstrap the cluster once this many nodes have found each other;\n"+
		"0 (the default) means this node only ever joins an existing cluster")
	fs.String("config", "", "YAML config `file` with services and actions")
	fs.Bool("dev", false, "single-node development mode: bootstrap-expect 1, no joining, a temporary\n"+
		"data dir unless -data-dir is given; join and bootstrap_expect in the config file are ignored")
	fs.String("log-level", "", "`level`: debug, info, warn or error (default "+defaultLogLevel+")")
	fs.Int("max-connections", 0, "most HTTP `connections` this node holds open; the idle are closed first\n"+
		"to make room (default 1024; 0: no limit)")
	addSecurityFlags(fs)
	addNodeFlags(fs) // flags_node.go
	fs.Usage = func() { printAgentUsage(fs) }
	return fs
}

func printAgentUsage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, `Usage: watchdog agent [flags]

Runs one node of the watchdog cluster. Every setting can come from a flag, an
environment variable or the -config file: a flag beats the environment, which
beats the file, which beats the built-in default.

Flags:
`)
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  -%s", f.Name)
		if typ != "" {
			fmt.Fprintf(w, " %s", typ)
		}
		fmt.Fprintf(w, "\n    \t%s\n    \tenv %s", strings.ReplaceAll(usage, "\n", "\n    \t"), envVar(f.Name))
		if key := fileKey(f.Name); key != "" {
			fmt.Fprintf(w, ", config file: %s", key)
		}
		fmt.Fprintln(w)
	})
}

// envVar is the environment variable that stands in for a flag.
func envVar(flagName string) string {
	return "WATCHDOG_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// fileKey is the config file key of a flag, "" for flags that only make
// sense per invocation.
func fileKey(flagName string) string {
	switch flagName {
	case "config", "dev":
		return ""
	case "tls-cert", "tls-key", "tls-ca":
		return strings.ReplaceAll(flagName, "-", "_") + "_file"
	}
	return strings.ReplaceAll(flagName, "-", "_")
}

// listFlag accepts both "-join a,b" and "-join a -join b".
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// setting is one resolved value and where it came from, so that an error
// points at the flag, variable or file to fix.
type setting struct {
	val      string
	from     string
	explicit bool // from a flag or environment variable
}

type resolver struct {
	fs       *flag.FlagSet
	getenv   func(string) string
	given    map[string]bool // flags present on the command line
	fileName string
	errs     []error
}

func (r *resolver) errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf(format, args...))
}

// pick applies the precedence flag > env > file; val is "" when none of them
// sets the value. An empty environment variable counts as unset.
func (r *resolver) pick(name, fileVal string) setting {
	if r.given[name] {
		return setting{val: r.fs.Lookup(name).Value.String(), from: "-" + name, explicit: true}
	}
	if env := envVar(name); r.getenv(env) != "" {
		return setting{val: r.getenv(env), from: "$" + env, explicit: true}
	}
	if fileVal != "" {
		return setting{val: fileVal, from: fmt.Sprintf("%s (%s)", r.fileName, fileKey(name))}
	}
	return setting{}
}

func (r *resolver) resolve(cfg *AgentConfig, hostname func() (string, error)) {
	f := cfg.File
	cfg.NodeID = r.nodeID(f.NodeID, hostname)
	cfg.HTTPAddr = r.addr("http-addr", f.HTTPAddr, defaultHTTPAddr, roleHTTP)
	cfg.RaftAddr = r.addr("raft-addr", f.RaftAddr, defaultRaftAddr, roleRaft)
	cfg.GossipAddr = r.addr("gossip-addr", f.GossipAddr, defaultGossipAddr, roleGossip)
	cfg.LogLevel = defaultLogLevel
	if s := r.pick("log-level", f.LogLevel); s.val != "" {
		cfg.LogLevel = s.val
		if !validLogLevel(s.val) {
			r.errorf("%s: invalid log level %q: %s", s.from, s.val, logLevelRule)
		}
	}
	if s := r.pick("dev", ""); s.val != "" {
		dev, err := strconv.ParseBool(s.val)
		if err != nil {
			r.errorf("%s: invalid value %q: want true or false", s.from, s.val)
		}
		cfg.Dev = dev
	}
	cfg.DataDir = r.pick("data-dir", f.DataDir).val
	join := r.pick("join", strings.Join(f.Join, ","))
	cfg.Join = r.joinList(join)
	fileExpect := "" // 0 in the file is the default, not a choice
	if f.BootstrapExpect != 0 {
		fileExpect = strconv.Itoa(f.BootstrapExpect)
	}
	expect := r.pick("bootstrap-expect", fileExpect)
	cfg.BootstrapExpect = r.bootstrapExpect(expect)
	cfg.File.MaxConnections = r.maxConnections(f.MaxConnections)
	cfg.TLS = r.tls(f)
	cfg.GossipKey = r.gossipKey(f)
	cfg.ClusterSecret = r.clusterSecret(f)
	cfg.LogStore = r.logStore(f)
	cfg.EnableDebug = r.enableDebug(f)
	switch {
	case cfg.Dev:
		cfg.OpenManagement = true
		r.devMode(cfg, join, expect)
	case cfg.DataDir == "":
		r.errorf("-data-dir is required unless -dev is given (or set $%s, or data_dir in the config file)",
			envVar("data-dir"))
	}
}

func (r *resolver) nodeID(fileVal string, hostname func() (string, error)) string {
	s := r.pick("node-id", fileVal)
	if s.val == "" {
		h, err := hostname()
		if err != nil {
			r.errorf("no -node-id given and the hostname is unavailable (%v); set -node-id", err)
			return ""
		}
		s = setting{val: h, from: "hostname (the default node id; set -node-id instead)"}
	}
	if !validID(s.val) {
		r.errorf("%s: invalid node id %q: %s", s.from, s.val, idRule)
	}
	return s.val
}

func (r *resolver) addr(name, fileVal, def, role string) string {
	s := r.pick(name, fileVal)
	if s.val == "" {
		return def
	}
	if err := checkAddr(s.val, role); err != nil {
		r.errorf("%s: %v", s.from, err)
	}
	return s.val
}

// joinList splits a comma-separated list, ignoring blanks so that a trailing
// comma in an environment variable is harmless.
func (r *resolver) joinList(s setting) []string {
	var out []string
	for part := range strings.SplitSeq(s.val, ",") {
		addr := strings.TrimSpace(part)
		if addr == "" {
			continue
		}
		if err := checkAddr(addr, roleJoin); err != nil {
			r.errorf("%s: %v", s.from, err)
		}
		out = append(out, addr)
	}
	return out
}

func (r *resolver) bootstrapExpect(s setting) int {
	if s.val == "" {
		return 0
	}
	n, err := strconv.Atoi(s.val)
	switch {
	case err != nil:
		r.errorf("%s: invalid value %q: want a whole number", s.from, s.val)
	case n < 0:
		r.errorf("%s: bootstrap-expect must be 0 or more, got %d", s.from, n)
	}
	return n
}

// maxConnections is max_connections as a flag or the environment sets it,
// else as the file (or its default) does.
func (r *resolver) maxConnections(fileVal int) int {
	s := r.pick("max-connections", "")
	if s.val == "" {
		return fileVal
	}
	n, err := strconv.Atoi(s.val)
	if err == nil {
		err = checkMaxConnections(n)
	} else {
		err = fmt.Errorf("invalid value %q: want a whole number", s.val)
	}
	if err != nil {
		r.errorf("%s: %v", s.from, err)
	}
	return n
}

// devMode makes a single node that bootstraps itself. Join and
// bootstrap_expect from the shared config file give way, since -dev is the
// more specific request; the same conflict within flags and environment
// variables is a mistake worth reporting.
func (r *resolver) devMode(cfg *AgentConfig, join, expect setting) {
	if join.explicit && len(cfg.Join) > 0 {
		r.errorf("%s: -dev runs a single node, which cannot join others", join.from)
	}
	if expect.explicit && cfg.BootstrapExpect > 1 {
		r.errorf("%s: -dev runs a single node, so bootstrap-expect must be 0 or 1, got %d",
			expect.from, cfg.BootstrapExpect)
	}
	cfg.Join = nil
	cfg.BootstrapExpect = 1
}

// validID keeps node ids, service ids and action names safe to use in URLs,
// file names and log lines: no separators, no path traversal.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func validLogLevel(s string) bool {
	switch s {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}

// checkAddr insists on host:port with a specific host: the HTTP, Raft and
// gossip addresses are all advertised to peers (followers forward
// heartbeats to the leader's HTTP address) and join addresses are dialled,
// so a wildcard would leave peers nothing to connect to.
func checkAddr(addr, role string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port, such as 10.0.0.5:8300", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid port in %q: want a number from 1 to 65535", addr)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return nil
	}
	why := "a join address must name the node to connect to"
	if role != roleJoin {
		why = "the " + role + " address is advertised to peers, which cannot connect to a wildcard; " +
			"use this node's own IP or host name"
	}
	return fmt.Errorf("address %q has no specific host: %s", addr, why)
}

// checkNode validates the node settings in the file. Flags and environment
// variables may override them later, but a bad value in the shared file is
// best reported with its line, and on every node.
func (p *parser) checkNode(cfg *FileConfig) {
	if cfg.NodeID != "" && !validID(cfg.NodeID) {
		p.addf(p.line("node_id"), "node_id", "invalid node id %q: %s", cfg.NodeID, idRule)
	}
	if cfg.LogLevel != "" && !validLogLevel(cfg.LogLevel) {
		p.addf(p.line("log_level"), "log_level", "invalid log level %q: %s", cfg.LogLevel, logLevelRule)
	}
	p.checkNodeRuntime(cfg) // flags_node.go
	if cfg.BootstrapExpect < 0 {
		p.addf(p.line("bootstrap_expect"), "bootstrap_expect", "must be 0 or more, got %d", cfg.BootstrapExpect)
	}
	addrs := []struct{ key, role, addr string }{
		{"http_addr", roleHTTP, cfg.HTTPAddr},
		{"raft_addr", roleRaft, cfg.RaftAddr},
		{"gossip_addr", roleGossip, cfg.GossipAddr},
	}
	for _, a := range addrs {
		if a.addr == "" {
			continue
		}
		if err := checkAddr(a.addr, a.role); err != nil {
			p.addf(p.line(a.key), a.key, "%v", err)
		}
	}
	for i, addr := range cfg.Join {
		if err := checkAddr(addr, roleJoin); err != nil {
			p.addf(p.line("join", strconv.Itoa(i)), "join", "%v", err)
		}
	}
}
