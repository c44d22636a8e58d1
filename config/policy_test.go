package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

func TestParseConfigRestartPolicyInherits(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
history_per_service: 20
defaults:
  timeout: 10s
  grace: 5s
  repeat: 1m
  max_repeats: 3
  flap_threshold: 4
  flap_window: 10m
  tags: [fleet]
services:
  inherits: {}
  own:
    grace: 0s
    repeat: 0s
    max_repeats: 0
    flap_threshold: 0
    tags: []
    description: "nightly backup, owned by infra"
`), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HistoryPerService != 20 {
		t.Errorf("history_per_service = %d", cfg.HistoryPerService)
	}
	in := definition(cfg.Services["inherits"])
	want := fsm.Definition{Timeout: 10 * time.Second, Actions: []string{"log"}, Grace: 5 * time.Second, Repeat: time.Minute,
		MaxRepeats: 3, FlapThreshold: 4, FlapWindow: 10 * time.Minute, Tags: []string{"fleet"}}
	if !in.Equal(&want) {
		t.Errorf("inherits = %+v\nwant       %+v", in, want)
	}
	own := definition(cfg.Services["own"])
	if own.Grace != 0 || own.Repeat != 0 || own.MaxRepeats != 0 || own.FlapThreshold != 0 || len(own.Tags) != 0 ||
		own.FlapWindow != 10*time.Minute || own.Description != "nightly backup, owned by infra" {
		t.Errorf("own = %+v: an explicit zero must not inherit", own)
	}
	for _, d := range []fsm.Definition{in, own, cfg.Desired().Defaults} {
		if err := d.Check(); err != nil {
			t.Errorf("%+v: %v", d, err)
		}
	}
	if got := cfg.Desired().HistoryPerService; got != 20 {
		t.Errorf("desired history_per_service = %d", got)
	}
	empty, err := ParseConfig(nil, "empty")
	if err != nil || empty.HistoryPerService != fsm.DefaultHistoryPerService {
		t.Errorf("default history_per_service = %d, %v", empty.HistoryPerService, err)
	}
}

func TestParseConfigRestartPolicyErrors(t *testing.T) {
	checkConfigErrors(t, []configErrorCase{
		{"history too long", "history_per_service: 100000\n", 1, "history_per_service", "must be 1 to 10000"},
		{"history zero", "history_per_service: 0\n", 1, "history_per_service", "must be 1 to 10000"},
		{"negative grace", "services:\n  w: {grace: -1s}\n", 2, "services.w.grace", "must not be negative"},
		{"grace too long", "defaults:\n  grace: 1000h\n", 2, "defaults.grace", "at most 720h"},
		{"repeat too short", "services:\n  w:\n    repeat: 10ms\n", 3, "services.w.repeat", "at least 100ms"},
		{"max_repeats negative", "services:\n  w: {max_repeats: -2}\n", 2, "services.w.max_repeats", "must be 0 (no limit) to 1000"},
		{"flap threshold too high", "services:\n  w: {flap_threshold: 10, flap_window: 1m}\n", 2, "services.w.flap_threshold", "must be 0 (off) to 9"},
		{"flap threshold without window", "services:\n  w:\n    flap_threshold: 3\n", 3, "services.w.flap_threshold", "needs a flap_window"},
		{"bad tag", "services:\n  w:\n    tags: [ok, \"no way\"]\n", 3, "services.w.tags", `invalid tag "no way"`},
		{"tag twice", "defaults:\n  tags: [a, a]\n", 2, "defaults.tags", "listed more than once"},
		{"multi-line description", "services:\n  w:\n    description: \"a\\nb\"\n", 3, "services.w.description", "one line"},
		{"bidi override in a description", "services:\n  w:\n    description: \"invoice \\u202Egnp.exe\"\n", 3, "services.w.description", "bidirectional"},
		{"zero-width space in a description", "services:\n  w:\n    description: \"ad\\u200Bmin\"\n", 3, "services.w.description", "zero-width"},
		{"ping token with space", "ping_token: \"a b\"\n", 1, "ping_token", "must not contain spaces"},
		{"ping token twice", "ping_token: a\nping_token_file: /x\n", 2, "ping_token_file", "not both"},
	})
}

func TestParseConfigPingTokenFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ping"), []byte("p1ng\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]byte("ping_token_file: ping\napi_token: s3cret\n"), filepath.Join(dir, "w.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PingToken != "p1ng" || cfg.APIToken != "s3cret" {
		t.Fatalf("tokens read: ping %d bytes, api %d bytes", len(cfg.PingToken), len(cfg.APIToken))
	}
	if _, ok := cfg.Actions["log"]; !ok {
		t.Fatal("the built-in log action is not among the known actions")
	}
}
