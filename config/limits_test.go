package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfigLimits(t *testing.T) {
	cfg, err := ParseConfig([]byte(`max_services: 500
auto_register: false
http_read_header_timeout: 2s
http_read_timeout: 5s
http_write_timeout: 20s
http_idle_timeout: 1m
`), "limits.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxServices != 500 || cfg.AutoRegister || cfg.ReadHeaderTimeout != Duration(2*time.Second) ||
		cfg.ReadTimeout != Duration(5*time.Second) || cfg.WriteTimeout != Duration(20*time.Second) ||
		cfg.IdleTimeout != Duration(time.Minute) {
		t.Fatalf("parsed: %+v", cfg)
	}
	def, err := ParseConfig(nil, "empty")
	if err != nil {
		t.Fatal(err)
	}
	if def.MaxServices != defaultMaxServices || !def.AutoRegister || def.ReadHeaderTimeout != Duration(defaultReadHeaderTimeout) ||
		def.ReadTimeout != Duration(defaultReadTimeout) || def.WriteTimeout != Duration(defaultWriteTimeout) ||
		def.IdleTimeout != Duration(defaultIdleTimeout) {
		t.Fatalf("defaults: %+v", def)
	}
	unlimited, err := ParseConfig([]byte("max_services: 0\n"), "unlimited")
	if err != nil || unlimited.MaxServices != 0 {
		t.Fatalf("max_services: 0 (no cap): %v, %d", err, unlimited.MaxServices)
	}
}

func TestParseConfigLimitsErrors(t *testing.T) {
	checkConfigErrors(t, []configErrorCase{
		{"negative cap", "max_services: -1\n", 1, "max_services", "must be 0 (no limit) to 10000000"},
		{"cap below the file", "max_services: 1\nservices:\n  a: {}\n  b: {}\n", 1, "max_services", "less than the 2 services the file defines"},
		{"auto_register not a bool", "auto_register: maybe\n", 1, "auto_register", "cannot unmarshal"},
		{"header timeout too short", "\nhttp_read_header_timeout: 1ms\n", 2, "http_read_header_timeout", "at least 100ms"},
		{"read timeout without unit", "http_read_timeout: 30\n", 1, "http_read_timeout", "write a number with a unit"},
		{"write timeout too short", "http_write_timeout: 5s\n", 1, "http_write_timeout", "at least 15s"},
		{"idle timeout too long", "http_idle_timeout: 2h\n", 1, "http_idle_timeout", "at most 1h"},
	})
}

// TestMaxConnectionsFromFileEnvAndFlag: max_connections defaults to 1024,
// comes from the file, $WATCHDOG_MAX_CONNECTIONS or -max-connections (in
// that rising order), and a value out of bounds is an error naming where
// it came from.
func TestMaxConnectionsFromFileEnvAndFlag(t *testing.T) {
	file := writeAgentConfigFile(t, "max_connections: 64\n")
	for _, c := range []struct {
		name string
		args []string
		env  testEnv
		want int
	}{
		{"default", []string{"-dev"}, nil, defaultMaxConnections},
		{"file", []string{"-dev", "-config", file}, nil, 64},
		{"env beats file", []string{"-dev", "-config", file}, testEnv{"WATCHDOG_MAX_CONNECTIONS": "128"}, 128},
		{"flag beats env", []string{"-dev", "-config", file, "-max-connections", "256"}, testEnv{"WATCHDOG_MAX_CONNECTIONS": "128"}, 256},
		{"0 is no limit", []string{"-dev", "-max-connections", "0"}, nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseAgentForTest(t, c.args, c.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.File.MaxConnections != c.want {
				t.Fatalf("max_connections %d, want %d", cfg.File.MaxConnections, c.want)
			}
		})
	}
	for _, c := range []struct {
		args []string
		env  testEnv
		from string
	}{
		{[]string{"-dev", "-max-connections", "5"}, nil, "-max-connections"},
		{[]string{"-dev"}, testEnv{"WATCHDOG_MAX_CONNECTIONS": "lots"}, "$WATCHDOG_MAX_CONNECTIONS"},
		{[]string{"-dev", "-config", writeAgentConfigFile(t, "max_connections: -1\n")}, nil, "max_connections"},
	} {
		if _, err := parseAgentForTest(t, c.args, c.env); err == nil || !strings.Contains(err.Error(), c.from) {
			t.Errorf("%v %v: error %v, want one naming %s", c.args, c.env, err, c.from)
		}
	}
}
