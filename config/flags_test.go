package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testEnv is a fake environment for ParseAgentFlags.
type testEnv map[string]string

func (e testEnv) get(name string) string { return e[name] }

func staticHostname(name string) func() (string, error) {
	return func() (string, error) { return name, nil }
}

// writeAgentConfigFile stores a config file for one test and returns its path.
func writeAgentConfigFile(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "watchdog.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func parseAgentForTest(t *testing.T, args []string, e testEnv) (*AgentConfig, error) {
	t.Helper()
	var stderr bytes.Buffer
	return parseAgentFlags(args, e.get, &stderr, staticHostname("host-1"))
}

func TestParseAgentFlagsDefaults(t *testing.T) {
	cfg, err := parseAgentForTest(t, []string{"-data-dir", "/var/lib/watchdog"}, nil)
	if err != nil {
		t.Fatalf("ParseAgentFlags: %v", err)
	}
	want := AgentConfig{
		NodeID: "host-1", HTTPAddr: defaultHTTPAddr, RaftAddr: defaultRaftAddr, GossipAddr: defaultGossipAddr,
		DataDir: "/var/lib/watchdog", LogLevel: "info",
	}
	got := *cfg
	got.File = nil
	if !equalAgentConfig(got, want) {
		t.Errorf("config = %+v\nwant %+v", got, want)
	}
	if cfg.File == nil || cfg.File.CheckInterval != Duration(defaultCheckInterval) ||
		!slices.Equal(cfg.File.Defaults.Actions, []string{"log"}) {
		t.Errorf("File = %+v, want all defaults", cfg.File)
	}
}

func equalAgentConfig(a, b AgentConfig) bool {
	return slices.Equal(a.Join, b.Join) && a.File == b.File &&
		a.NodeID == b.NodeID && a.HTTPAddr == b.HTTPAddr && a.RaftAddr == b.RaftAddr &&
		a.GossipAddr == b.GossipAddr && a.DataDir == b.DataDir && a.BootstrapExpect == b.BootstrapExpect &&
		a.ConfigPath == b.ConfigPath && a.Dev == b.Dev && a.LogLevel == b.LogLevel
}

func TestParseAgentFlagsPrecedence(t *testing.T) {
	file := writeAgentConfigFile(t, `node_id: from-file
http_addr: 10.0.0.1:1001
log_level: warn
bootstrap_expect: 3
join: [10.0.0.9:8301]
data_dir: /file
`)
	tests := []struct {
		name     string
		args     []string
		env      testEnv
		node     string
		http     string
		level    string
		expect   int
		join     []string
		dataDirs string
	}{
		{"file beats default", nil, nil,
			"from-file", "10.0.0.1:1001", "warn", 3, []string{"10.0.0.9:8301"}, "/file"},
		{"env beats file", nil,
			testEnv{"WATCHDOG_NODE_ID": "from-env", "WATCHDOG_HTTP_ADDR": "10.0.0.2:1002", "WATCHDOG_LOG_LEVEL": "debug",
				"WATCHDOG_BOOTSTRAP_EXPECT": "5", "WATCHDOG_JOIN": "10.0.0.7:8301, 10.0.0.8:8301,", "WATCHDOG_DATA_DIR": "/env"},
			"from-env", "10.0.0.2:1002", "debug", 5, []string{"10.0.0.7:8301", "10.0.0.8:8301"}, "/env"},
		{"flag beats env",
			[]string{"-node-id", "from-flag", "-http-addr", "10.0.0.3:1003", "-log-level", "error",
				"-bootstrap-expect", "0", "-join", "10.0.0.5:8301,10.0.0.6:8301", "-join", "10.0.0.4:8301", "-data-dir", "/flag"},
			testEnv{"WATCHDOG_NODE_ID": "from-env", "WATCHDOG_HTTP_ADDR": "10.0.0.2:1002", "WATCHDOG_LOG_LEVEL": "debug",
				"WATCHDOG_BOOTSTRAP_EXPECT": "5", "WATCHDOG_JOIN": "10.0.0.7:8301", "WATCHDOG_DATA_DIR": "/env"},
			"from-flag", "10.0.0.3:1003", "error", 0, []string{"10.0.0.5:8301", "10.0.0.6:8301", "10.0.0.4:8301"}, "/flag"},
		{"empty env var is unset", nil, testEnv{"WATCHDOG_NODE_ID": "", "WATCHDOG_HTTP_ADDR": ""},
			"from-file", "10.0.0.1:1001", "warn", 3, []string{"10.0.0.9:8301"}, "/file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseAgentForTest(t, append([]string{"-config", file}, tc.args...), tc.env)
			if err != nil {
				t.Fatalf("ParseAgentFlags: %v", err)
			}
			got := []any{cfg.NodeID, cfg.HTTPAddr, cfg.LogLevel, cfg.BootstrapExpect, cfg.DataDir}
			want := []any{tc.node, tc.http, tc.level, tc.expect, tc.dataDirs}
			if !slices.Equal(got, want) || !slices.Equal(cfg.Join, tc.join) {
				t.Errorf("got %v join %q\nwant %v join %q", got, cfg.Join, want, tc.join)
			}
		})
	}
}

func TestParseAgentFlagsConfigFromEnv(t *testing.T) {
	file := writeAgentConfigFile(t, "raft_addr: 10.0.0.1:8300\nservices:\n  w: {timeout: 2s}\n")
	cfg, err := parseAgentForTest(t, []string{"-dev"}, testEnv{"WATCHDOG_CONFIG": file})
	if err != nil {
		t.Fatalf("ParseAgentFlags: %v", err)
	}
	if cfg.ConfigPath != file || cfg.RaftAddr != "10.0.0.1:8300" || len(cfg.File.Services) != 1 {
		t.Errorf("config = %+v, want the file named by WATCHDOG_CONFIG", cfg)
	}
}

func TestParseAgentFlagsDev(t *testing.T) {
	file := writeAgentConfigFile(t, "bootstrap_expect: 3\njoin: [10.0.0.9:8301]\n")
	tests := []struct {
		name string
		args []string
		env  testEnv
	}{
		{"flag", []string{"-dev"}, nil},
		{"env", nil, testEnv{"WATCHDOG_DEV": "true"}},
		{"file cluster settings give way", []string{"-dev", "-config", file}, nil},
		{"explicit bootstrap-expect 1", []string{"-dev", "-bootstrap-expect", "1"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseAgentForTest(t, tc.args, tc.env)
			if err != nil {
				t.Fatalf("ParseAgentFlags: %v", err)
			}
			if !cfg.Dev || cfg.DataDir != "" || cfg.BootstrapExpect != 1 || cfg.Join != nil {
				t.Errorf("config = %+v, want dev mode, no data dir, bootstrap-expect 1, no join", cfg)
			}
		})
	}
}

func TestParseAgentFlagsErrors(t *testing.T) {
	badFile := writeAgentConfigFile(t, "services:\n  w:\n    timeout: 3x\n")
	tests := []struct {
		name string
		args []string
		env  testEnv
		want []string // all must appear in the error
	}{
		{"bad env int", []string{"-dev"}, testEnv{"WATCHDOG_BOOTSTRAP_EXPECT": "abc"}, []string{"WATCHDOG_BOOTSTRAP_EXPECT", `"abc"`}},
		{"bad env bool", nil, testEnv{"WATCHDOG_DEV": "maybe"}, []string{"WATCHDOG_DEV", `"maybe"`}},
		{"bad flag int", []string{"-bootstrap-expect", "abc"}, nil, []string{"-bootstrap-expect"}},
		{"negative bootstrap-expect", []string{"-dev", "-bootstrap-expect", "-1"}, nil, []string{"-bootstrap-expect", "0 or more"}},
		{"missing data dir", nil, nil, []string{"-data-dir is required", "WATCHDOG_DATA_DIR"}},
		{"wildcard raft addr", []string{"-dev", "-raft-addr", "0.0.0.0:8300"}, nil, []string{"-raft-addr", "advertised to peers"}},
		{"empty gossip host", []string{"-dev"}, testEnv{"WATCHDOG_GOSSIP_ADDR": ":8301"}, []string{"$WATCHDOG_GOSSIP_ADDR", "advertised to peers"}},
		{"ipv6 wildcard http", []string{"-dev", "-http-addr", "[::]:8080"}, nil, []string{"-http-addr", "advertised to peers"}},
		{"no port", []string{"-dev", "-http-addr", "localhost"}, nil, []string{"-http-addr", "host:port"}},
		{"bad port", []string{"-dev", "-raft-addr", "10.0.0.1:99999"}, nil, []string{"-raft-addr", "1 to 65535"}},
		{"bad join", []string{"-data-dir", "/d", "-join", "10.0.0.1:8301,nohost"}, nil, []string{"-join", `"nohost"`}},
		{"bad node id", []string{"-dev", "-node-id", "a b"}, nil, []string{"-node-id", `invalid node id "a b"`}},
		{"bad log level", []string{"-dev"}, testEnv{"WATCHDOG_LOG_LEVEL": "loud"}, []string{"$WATCHDOG_LOG_LEVEL", `"loud"`}},
		{"dev with join", []string{"-dev", "-join", "10.0.0.1:8301"}, nil, []string{"-join", "single node"}},
		{"dev with bootstrap-expect 3", []string{"-dev"}, testEnv{"WATCHDOG_BOOTSTRAP_EXPECT": "3"}, []string{"$WATCHDOG_BOOTSTRAP_EXPECT", "single node"}},
		{"bad config file", []string{"-dev", "-config", badFile}, nil, []string{badFile + ":3: services.w.timeout: "}},
		{"missing config file", []string{"-dev", "-config", badFile + ".missing"}, nil, []string{"no such file"}},
		{"unknown flag", []string{"-nope"}, nil, []string{"-nope"}},
		{"positional argument", []string{"-dev", "extra"}, nil, []string{`unexpected argument "extra"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAgentForTest(t, tc.args, tc.env)
			if err == nil {
				t.Fatal("ParseAgentFlags succeeded, want an error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestParseAgentFlagsInvalidHostname(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseAgentFlags([]string{"-dev"}, testEnv{}.get, &stderr, staticHostname("under_score/slash"))
	if err == nil || !strings.Contains(err.Error(), "hostname") || !strings.Contains(err.Error(), "-node-id") {
		t.Errorf("error = %v, want it to blame the hostname and suggest -node-id", err)
	}
	_, err = parseAgentFlags([]string{"-dev"}, testEnv{}.get, &stderr, func() (string, error) {
		return "", errors.New("no uts namespace")
	})
	if err == nil || !strings.Contains(err.Error(), "no uts namespace") {
		t.Errorf("error = %v, want the hostname failure", err)
	}
}

func TestParseAgentFlagsHelp(t *testing.T) {
	var stderr bytes.Buffer
	_, err := ParseAgentFlags([]string{"-h"}, testEnv{}.get, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("error = %v, want flag.ErrHelp", err)
	}
	usage := stderr.String()
	flags := []string{"node-id", "http-addr", "raft-addr", "gossip-addr", "data-dir", "join",
		"bootstrap-expect", "config", "dev", "log-level"}
	for _, name := range flags {
		if !strings.Contains(usage, "-"+name) || !strings.Contains(usage, envVar(name)) {
			t.Errorf("usage does not list -%s with %s:\n%s", name, envVar(name), usage)
		}
	}
	if !strings.Contains(usage, "WATCHDOG_BOOTSTRAP_EXPECT") {
		t.Errorf("usage lacks the env var spelling WATCHDOG_BOOTSTRAP_EXPECT:\n%s", usage)
	}
}
