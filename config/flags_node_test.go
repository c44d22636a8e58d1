package config

import (
	"strings"
	"testing"

	"github.com/watchdog-ha/watchdog/cluster"
)

// TestNodeRuntimeSettings: raft_log_store and enable_debug come from the
// flag, else the environment, else the file; unset, the store is "" (the
// data dir decides) and debugging is off.
func TestNodeRuntimeSettings(t *testing.T) {
	file := writeAgentConfigFile(t, "raft_log_store: boltdb\nenable_debug: true\n")
	cases := []struct {
		name      string
		args      []string
		env       testEnv
		wantStore string
		wantDebug bool
	}{
		{"unset", []string{"-data-dir", "/d"}, nil, "", false},
		{"file", []string{"-data-dir", "/d", "-config", file}, nil, cluster.LogStoreBoltDB, true},
		{"env beats file", []string{"-data-dir", "/d", "-config", file},
			testEnv{"WATCHDOG_RAFT_LOG_STORE": "wal", "WATCHDOG_ENABLE_DEBUG": "false"}, cluster.LogStoreWAL, false},
		{"flag beats env", []string{"-data-dir", "/d", "-raft-log-store", "boltdb", "-enable-debug"},
			testEnv{"WATCHDOG_RAFT_LOG_STORE": "wal"}, cluster.LogStoreBoltDB, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseAgentForTest(t, tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.LogStore != tc.wantStore || cfg.EnableDebug != tc.wantDebug {
				t.Fatalf("log store %q, debug %v; want %q, %v", cfg.LogStore, cfg.EnableDebug, tc.wantStore, tc.wantDebug)
			}
		})
	}
}

func TestNodeRuntimeSettingsErrors(t *testing.T) {
	checkConfigErrors(t, []configErrorCase{
		{"unknown store", "node_id: a\nraft_log_store: sqlite\n", 2, "raft_log_store", "must be wal or boltdb"},
		{"debug not a bool", "enable_debug: sometimes\n", 1, "enable_debug", "sometimes"},
	})
	for name, args := range map[string][]string{
		"flag": {"-data-dir", "/d", "-raft-log-store", "bolt"},
		"env":  {"-data-dir", "/d"},
	} {
		_, err := parseAgentForTest(t, args, testEnv{"WATCHDOG_RAFT_LOG_STORE": "bolt", "WATCHDOG_ENABLE_DEBUG": "yes please"})
		if err == nil || !strings.Contains(err.Error(), `invalid log store "bolt": must be wal or boltdb`) {
			t.Errorf("%s: %v; want the bad store named", name, err)
		}
		if name == "env" && (err == nil || !strings.Contains(err.Error(), "$WATCHDOG_ENABLE_DEBUG")) {
			t.Errorf("env: %v; want $WATCHDOG_ENABLE_DEBUG named", err)
		}
	}
}
