package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const fullConfig = `# node settings (all optional here; flags and env vars override them)
node_id: n1
http_addr: 127.0.0.1:8081
raft_addr: 127.0.0.1:8181
gossip_addr: 127.0.0.1:8281
data_dir: /var/lib/watchdog
join: ["127.0.0.1:8282", "127.0.0.1:8283"]
bootstrap_expect: 3
log_level: info            # debug|info|warn|error

check_interval: 1s          # how often the leader looks; optional, default 250ms
defaults:                   # for services first seen through a heartbeat
  timeout: 10s
  actions: [log]
  on_recovered: []
actions:
  restart-worker:
    exec: ["/usr/local/bin/restart-worker", "--fast"]
    timeout: 30s
  audit:
    log: {}
services:
  worker-1:
    timeout: 3s
    actions: [restart-worker]
    on_recovered: [log]
`

func TestParseConfigFull(t *testing.T) {
	cfg, err := ParseConfig([]byte(fullConfig), "watchdog.yaml")
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if cfg.NodeID != "n1" || cfg.HTTPAddr != "127.0.0.1:8081" || cfg.RaftAddr != "127.0.0.1:8181" ||
		cfg.GossipAddr != "127.0.0.1:8281" || cfg.DataDir != "/var/lib/watchdog" ||
		cfg.BootstrapExpect != 3 || cfg.LogLevel != "info" {
		t.Errorf("node settings = %+v", cfg)
	}
	if !slices.Equal(cfg.Join, []string{"127.0.0.1:8282", "127.0.0.1:8283"}) {
		t.Errorf("Join = %q", cfg.Join)
	}
	if cfg.CheckInterval != Duration(time.Second) {
		t.Errorf("CheckInterval = %v", cfg.CheckInterval)
	}
	wantDefaults := ServiceConfig{Timeout: Duration(10 * time.Second), Actions: []string{"log"}, OnRecovered: []string{}}
	if !equalServiceConfig(cfg.Defaults, wantDefaults) {
		t.Errorf("Defaults = %+v, want %+v", cfg.Defaults, wantDefaults)
	}
	restart := cfg.Actions["restart-worker"]
	if !slices.Equal(restart.Exec, []string{"/usr/local/bin/restart-worker", "--fast"}) ||
		restart.Log != nil || restart.Timeout != Duration(30*time.Second) {
		t.Errorf("restart-worker = %+v", restart)
	}
	if audit := cfg.Actions["audit"]; audit.Log == nil || audit.Exec != nil || audit.Timeout != Duration(defaultActionTimeout) {
		t.Errorf("audit = %+v", audit)
	}
	if builtin := cfg.Actions["log"]; builtin.Log == nil || builtin.Exec != nil {
		t.Errorf("built-in log action = %+v", builtin)
	}
	wantWorker := ServiceConfig{Timeout: Duration(3 * time.Second), Actions: []string{"restart-worker"}, OnRecovered: []string{"log"}}
	if !equalServiceConfig(cfg.Services["worker-1"], wantWorker) {
		t.Errorf("worker-1 = %+v, want %+v", cfg.Services["worker-1"], wantWorker)
	}
}

func equalServiceConfig(a, b ServiceConfig) bool {
	return a.Timeout == b.Timeout && slices.Equal(a.Actions, b.Actions) && slices.Equal(a.OnRecovered, b.OnRecovered)
}

func TestParseConfigEmpty(t *testing.T) {
	for _, data := range []string{"", "# only a comment\n", "~\n", "---\n"} {
		cfg, err := ParseConfig([]byte(data), "watchdog.yaml")
		if err != nil {
			t.Fatalf("ParseConfig(%q): %v", data, err)
		}
		if cfg.CheckInterval != Duration(defaultCheckInterval) {
			t.Errorf("%q: CheckInterval = %v, want %v", data, cfg.CheckInterval, Duration(defaultCheckInterval))
		}
		want := ServiceConfig{Timeout: Duration(defaultServiceTimeout), Actions: []string{"log"}}
		if !equalServiceConfig(cfg.Defaults, want) {
			t.Errorf("%q: Defaults = %+v, want %+v", data, cfg.Defaults, want)
		}
		if len(cfg.Services) != 0 || len(cfg.Actions) != 1 || cfg.Actions["log"].Log == nil {
			t.Errorf("%q: Services = %v, Actions = %v; want none and only the built-in log", data, cfg.Services, cfg.Actions)
		}
	}
}

func TestParseConfigInheritance(t *testing.T) {
	const data = `
defaults:
  timeout: 20s
  actions: [page]
  on_recovered: [log]
actions:
  page: {exec: [/bin/page]}
services:
  bare:
  timeout-only: {timeout: 2s}
  no-actions: {actions: []}
  own: {actions: [log], on_recovered: [page]}
`
	cfg, err := ParseConfig([]byte(data), "watchdog.yaml")
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	tests := map[string]ServiceConfig{
		"bare":         {Timeout: Duration(20 * time.Second), Actions: []string{"page"}, OnRecovered: []string{"log"}},
		"timeout-only": {Timeout: Duration(2 * time.Second), Actions: []string{"page"}, OnRecovered: []string{"log"}},
		"no-actions":   {Timeout: Duration(20 * time.Second), Actions: []string{}, OnRecovered: []string{"log"}},
		"own":          {Timeout: Duration(20 * time.Second), Actions: []string{"log"}, OnRecovered: []string{"page"}},
	}
	for id, want := range tests {
		got := cfg.Services[id]
		if !equalServiceConfig(got, want) {
			t.Errorf("%s = %+v, want %+v", id, got, want)
		}
	}
	if cfg.Services["no-actions"].Actions == nil {
		t.Error("explicit empty actions became nil; it must stay distinct from inherited")
	}
	// Inherited lists are copies: changing one service must not change another.
	cfg.Services["bare"].Actions[0] = "changed"
	if cfg.Defaults.Actions[0] != "page" || cfg.Services["timeout-only"].Actions[0] != "page" {
		t.Error("services share their inherited action list")
	}
}

func TestParseConfigDefaultsWithoutActions(t *testing.T) {
	cfg, err := ParseConfig([]byte("defaults:\n  timeout: 5s\n"), "watchdog.yaml")
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if !slices.Equal(cfg.Defaults.Actions, []string{"log"}) {
		t.Errorf("Defaults.Actions = %q, want [log]", cfg.Defaults.Actions)
	}
	cfg, err = ParseConfig([]byte("defaults:\n  actions: []\n"), "watchdog.yaml")
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if cfg.Defaults.Actions == nil || len(cfg.Defaults.Actions) != 0 {
		t.Errorf("Defaults.Actions = %#v, want explicit empty list", cfg.Defaults.Actions)
	}
}

// configErrorCase is a file that must be refused, and where the error points.
type configErrorCase struct {
	name string
	data string
	line int
	path string // "" for errors about the file as a whole
	msg  string
}

func checkConfigErrors(t *testing.T, tests []configErrorCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.data), "watchdog.yaml")
			if err == nil {
				t.Fatalf("ParseConfig succeeded, want an error at line %d", tc.line)
			}
			prefix := fmt.Sprintf("watchdog.yaml:%d: ", tc.line)
			if tc.path != "" {
				prefix += tc.path + ": "
			}
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error = %q\nwant prefix %q containing %q", err, prefix, tc.msg)
			}
		})
	}
}

// TestParseConfigErrors covers the file's shape, types and node settings.
func TestParseConfigErrors(t *testing.T) {
	checkConfigErrors(t, []configErrorCase{
		{"unknown top-level key", "node_id: n1\nnode_idd: n2\n", 2, "node_idd", "unknown field"},
		{"unknown service key", "services:\n  w:\n    timeout: 1s\n    tmeout: 2s\n", 4, "services.w.tmeout", "unknown field"},
		{"duplicate key", "services:\n  w: {}\n  w: {}\n", 3, "services.w", "duplicate key (already set on line 2)"},
		{"duration without unit", "check_interval: 5\n", 1, "check_interval", `invalid duration "5"`},
		{"duration as list", "check_interval: [1s]\n", 1, "check_interval", "expected a duration"},
		{"check interval too short", "check_interval: 5ms\n", 1, "check_interval", "at least 10ms"},
		{"check interval too long", "\ncheck_interval: 2m\n", 2, "check_interval", "at most 1m"},
		{"defaults timeout too short", "defaults:\n  timeout: 10ms\n", 2, "defaults.timeout", "at least 100ms"},
		{"bad node id", "node_id: a/b\n", 1, "node_id", `invalid node id "a/b"`},
		{"bad log level", "log_level: verbose\n", 1, "log_level", `invalid log level "verbose"`},
		{"negative bootstrap_expect", "bootstrap_expect: -1\n", 1, "bootstrap_expect", "must be 0 or more"},
		{"bootstrap_expect not a number", "bootstrap_expect: abc\n", 1, "bootstrap_expect", "cannot unmarshal"},
		{"wildcard raft addr", "raft_addr: 0.0.0.0:8300\n", 1, "raft_addr", "advertised to peers"},
		{"empty gossip host", "gossip_addr: \":8301\"\n", 1, "gossip_addr", "advertised to peers"},
		{"http addr without port", "http_addr: localhost\n", 1, "http_addr", "want host:port"},
		{"bad join address", "join:\n  - 10.0.0.1:8301\n  - 10.0.0.2\n", 3, "join", `invalid address "10.0.0.2"`},
		{"services not a mapping", "services: [a, b]\n", 1, "services", "expected a mapping"},
		{"merge key", "defaults: &d {timeout: 1s}\nservices:\n  w:\n    <<: *d\n", 4, "services.w", "merge keys"},
		{"two documents", "node_id: n1\n---\nnode_id: n2\n", 2, "", "more than one YAML document"},
		{"top level list", "- a\n- b\n", 1, "", "top level must be a mapping"},
		{"syntax error", "node_id: n1\nlog_level: info\n  data_dir: /x\n", 3, "", "mapping values are not allowed"},
	})
}

// TestParseConfigRuleErrors covers services, actions and their references.
func TestParseConfigRuleErrors(t *testing.T) {
	checkConfigErrors(t, []configErrorCase{
		{"unknown defaults key", "defaults:\n  action: [log]\n", 2, "defaults.action", "unknown field"},
		{"log action takes no keys", "actions:\n  a:\n    log: {level: x}\n", 3, "actions.a.log.level", "unknown field"},
		{"bad service timeout", "services:\n  worker-1:\n    actions: [log]\n    timeout: 3x\n", 4, "services.worker-1.timeout", `invalid duration "3x"`},
		{"service timeout too short", "services:\n  w:\n    timeout: 99ms\n", 3, "services.w.timeout", "at least 100ms"},
		{"service timeout too long", "services:\n  w:\n    timeout: 721h\n", 3, "services.w.timeout", "at most 720h"},
		{"service timeout zero", "services:\n  w:\n    timeout: 0s\n", 3, "services.w.timeout", "must be positive"},
		{"negative timeout", "services:\n  w: {timeout: -1s}\n", 2, "services.w.timeout", "must be positive"},
		{"unknown action in service", "services:\n  worker-1:\n    actions:\n      - log\n      - restart\n", 5, "services.worker-1.actions", `unknown action "restart"`},
		{"unknown on_recovered action", "services:\n  w:\n    on_recovered: [nope]\n", 3, "services.w.on_recovered", `unknown action "nope"`},
		{"unknown default action", "defaults:\n  actions: [page]\n", 2, "defaults.actions", `unknown action "page"`},
		{"unknown default on_recovered", "defaults:\n  on_recovered: [page]\n", 2, "defaults.on_recovered", `unknown action "page"`},
		{"action listed twice", "services:\n  w: {actions: [log, log]}\n", 2, "services.w.actions", "more than once"},
		{"actions not a list", "services:\n  w:\n    actions: log\n", 3, "services.w.actions", "expected a list"},
		{"log redefined", "actions:\n  log:\n    log: {}\n", 2, "actions.log", "built-in"},
		{"action with both kinds", "actions:\n  a:\n    exec: [/bin/true]\n    log: {}\n", 2, "actions.a", "set exactly one of exec, log, webhook, slack, email or pagerduty; this action sets exec and log"},
		{"action with no kind", "actions:\n  a:\n    timeout: 1s\n", 2, "actions.a", "exactly one of exec (a command to run), log: {}, webhook"},
		{"action null", "actions:\n  a:\n", 2, "actions.a", "exactly one of exec"},
		{"empty exec", "actions:\n  a:\n    exec: []\n", 3, "actions.a.exec", "must not be empty"},
		{"relative exec", "actions:\n  a:\n    exec:\n      - restart.sh\n", 4, "actions.a.exec", `"restart.sh" is not an absolute path`},
		{"exec as string", "actions:\n  a:\n    exec: /bin/restart --fast\n", 3, "actions.a.exec", "expected a list"},
		{"action timeout too long", "actions:\n  a:\n    exec: [/bin/x]\n    timeout: 2h\n", 4, "actions.a.timeout", "at most 1h"},
		{"action timeout zero", "actions:\n  a:\n    exec: [/bin/x]\n    timeout: 0s\n", 4, "actions.a.timeout", "must be positive"},
		{"bad action name", "actions:\n  \"a b\":\n    log: {}\n", 2, "actions", `invalid action name "a b"`},
		{"bad service id", "services:\n  w: {}\n  \"..\": {}\n", 3, "services", `invalid service id ".."`},
		{"service id too long", "services:\n  " + strings.Repeat("x", 129) + ": {}\n", 2, "services", "invalid service id"},
	})
}

func TestParseConfigReportsAllProblemsInFileOrder(t *testing.T) {
	const data = `services:
  b:
    actions: [missing]
  a:
    timeout: 1ms
check_interval: 1h
`
	_, err := ParseConfig([]byte(data), "w.yaml")
	if err == nil {
		t.Fatal("ParseConfig succeeded")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"w.yaml:3: services.b.actions: ", "w.yaml:5: services.a.timeout: ", "w.yaml:6: check_interval: "}
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, prefix := range want {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], prefix)
		}
	}
}

func TestParseConfigAliases(t *testing.T) {
	const data = `
actions:
  page: {exec: [/bin/page]}
defaults:
  actions: &paging [page, log]
services:
  w: {actions: *paging}
`
	cfg, err := ParseConfig([]byte(data), "watchdog.yaml")
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if got := cfg.Services["w"].Actions; !slices.Equal(got, []string{"page", "log"}) {
		t.Errorf("w.Actions = %q, want the aliased list", got)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "watchdog.yaml")
	if err := os.WriteFile(path, []byte("services:\n  w:\n    timeout: 3x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadConfig(path)
	if want := path + ":3: services.w.timeout: "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("loadConfig error = %v, want prefix %q", err, want)
	}
	_, err = loadConfig(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("loadConfig(missing) error = %v, want fs.ErrNotExist", err)
	}
}

func TestDurationYAMLRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{250 * time.Millisecond, time.Minute, 90 * time.Second, 720 * time.Hour} {
		out, err := yaml.Marshal(Duration(d))
		if err != nil {
			t.Fatalf("Marshal(%v): %v", d, err)
		}
		var back Duration
		if err := yaml.Unmarshal(out, &back); err != nil {
			t.Fatalf("Unmarshal(%q): %v", out, err)
		}
		if back != Duration(d) {
			t.Errorf("%v -> %q -> %v", d, out, time.Duration(back))
		}
	}
	var d Duration
	err := yaml.Unmarshal([]byte("3x"), &d)
	if err == nil || !strings.Contains(err.Error(), `line 1: invalid duration "3x"`) {
		t.Errorf("Unmarshal(3x) error = %v, want it to carry the line", err)
	}
}

func TestDeadServerReapAfterIsAConfigKey(t *testing.T) {
	if got := mustParse(t, "").DeadServerReapAfter; got != Duration(72*time.Hour) {
		t.Fatalf("default dead_server_reap_after = %s, want 72h", got)
	}
	if got := mustParse(t, "dead_server_reap_after: 10m\n").DeadServerReapAfter; got != Duration(10*time.Minute) {
		t.Fatalf("dead_server_reap_after: 10m gave %s", got)
	}
	_, err := ParseConfig([]byte("check_interval: 1s\ndead_server_reap_after: 5ms\n"), "w.yaml")
	if err == nil || !strings.Contains(err.Error(), "w.yaml:2: dead_server_reap_after: 5ms is too short") {
		t.Fatalf("a 5ms reap time: %v", err)
	}
}

func mustParse(t *testing.T, yaml string) *FileConfig {
	t.Helper()
	f, err := ParseConfig([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return f
}
