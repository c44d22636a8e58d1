package config

import (
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
)

func TestParseConfigBatching(t *testing.T) {
	cfg, err := ParseConfig([]byte("batch_size: 512\nbatch_window: 2ms\n"), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BatchSize != 512 || time.Duration(cfg.BatchWindow) != 2*time.Millisecond {
		t.Fatalf("batch_size %d, batch_window %s", cfg.BatchSize, cfg.BatchWindow)
	}
	empty, err := ParseConfig(nil, "defaults")
	if err != nil {
		t.Fatal(err)
	}
	if empty.BatchSize != cluster.DefaultMaxBatch || time.Duration(empty.BatchWindow) != cluster.DefaultBatchWindow {
		t.Fatalf("defaults: batch_size %d, batch_window %s", empty.BatchSize, empty.BatchWindow)
	}
}

func TestParseConfigBatchingErrors(t *testing.T) {
	checkConfigErrors(t, []configErrorCase{
		{"batch of none", "batch_size: 0\n", 1, "batch_size", "must be 1 to 16384"},
		{"huge batch", "\nbatch_size: 100000\n", 2, "batch_size", "must be 1 to 16384"},
		{"negative window", "batch_window: -1ms\n", 1, "batch_window", "must not be negative"},
		{"window in seconds", "batch_window: 10s\n", 1, "batch_window", "at most 100ms"},
		{"window without unit", "batch_window: 5\n", 1, "batch_window", "with a unit"},
	})
}
