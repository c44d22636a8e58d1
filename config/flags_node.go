package config

import (
	"flag"
	"strconv"

	"github.com/watchdog-ha/watchdog/cluster"
)

// Node-local settings of how the node runs, not what the cluster watches:
// where its Raft log lives and whether it serves Go's profiler.

const logStoreRule = "must be " + cluster.LogStoreWAL + " or " + cluster.LogStoreBoltDB

func addNodeFlags(fs *flag.FlagSet) {
	fs.String("raft-log-store", "", "`store` of the Raft log in a new data dir: "+cluster.LogStoreWAL+" or "+
		cluster.LogStoreBoltDB+" (default "+cluster.DefaultLogStore+");\n"+
		"a data dir that holds a log keeps its store, and naming the other one is refused")
	fs.Bool("enable-debug", false, "serve Go's profiler at /debug/pprof/ (behind the API token)")
}

// logStore is the configured store, or "" when none is: the node then
// keeps what its data dir holds, or creates the default.
func (r *resolver) logStore(f *FileConfig) string {
	s := r.pick("raft-log-store", f.RaftLogStore)
	if s.val != "" && !cluster.ValidLogStore(s.val) {
		r.errorf("%s: invalid log store %q: %s", s.from, s.val, logStoreRule)
	}
	return s.val
}

func (r *resolver) enableDebug(f *FileConfig) bool {
	s := r.pick("enable-debug", strconv.FormatBool(f.EnableDebug))
	on, err := strconv.ParseBool(s.val)
	if err != nil {
		r.errorf("%s: invalid value %q: want true or false", s.from, s.val)
	}
	return on
}

// checkNodeRuntime validates raft_log_store in the file, with its line.
func (p *parser) checkNodeRuntime(cfg *FileConfig) {
	if v := cfg.RaftLogStore; v != "" && !cluster.ValidLogStore(v) {
		p.addf(p.line("raft_log_store"), "raft_log_store", "invalid log store %q: %s", v, logStoreRule)
	}
}
