package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfigSchedulesAndDependencies(t *testing.T) {
	cfg, err := ParseConfig([]byte(`defaults:
  timeout: 1m
services:
  db: {timeout: 30s}
  app:
    timeout: 2m
    depends_on: [db]
  backup:
    schedule: "30 2 * * *"
    tz: Europe/Berlin
    grace: 15m
    depends_on: [db]
`), "watchdog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Desired()
	backup := c.Services["backup"]
	if backup.Timeout != 0 || backup.Schedule != "30 2 * * *" || backup.TZ != "Europe/Berlin" || backup.Grace != 15*time.Minute ||
		len(backup.DependsOn) != 1 || backup.Check() != nil {
		t.Fatalf("backup: %+v (check: %v)", backup, backup.Check())
	}
	if app := c.Services["app"]; app.Timeout != 2*time.Minute || app.DependsOn[0] != "db" {
		t.Fatalf("app: %+v", app)
	}
}

func TestParseConfigScheduleErrors(t *testing.T) {
	checkConfigErrors(t, []configErrorCase{
		{"timeout and schedule", "services:\n  j:\n    schedule: '@daily'\n    grace: 1m\n    timeout: 1h\n", 5, "services.j.timeout", "timeout and schedule exclude each other"},
		{"no grace", "services:\n  j:\n    schedule: '@daily'\n", 3, "services.j.schedule", "needs a grace"},
		{"bad schedule", "services:\n  j:\n    grace: 1m\n    schedule: '0 0 * *'\n", 4, "services.j.schedule", "want five fields"},
		{"bad zone", "services:\n  j:\n    grace: 1m\n    schedule: '@daily'\n    tz: Moon/Base\n", 5, "services.j.tz", `unknown time zone "Moon/Base"`},
		{"tz without schedule", "services:\n  j:\n    timeout: 1m\n    tz: UTC\n", 4, "services.j.tz", "needs a schedule"},
		{"schedule in defaults", "defaults:\n  schedule: '@daily'\n", 2, "defaults.schedule", "per service"},
		{"unknown dependency", "services:\n  a:\n    depends_on:\n      - b\n", 4, "services.a.depends_on", `no service "b" in this file`},
		{"itself", "services:\n  a:\n    depends_on: [a]\n", 3, "services.a.depends_on", "cannot depend on itself"},
		{"twice", "services:\n  a: {depends_on: [b, b]}\n  b: {}\n", 2, "services.a.depends_on", "more than once"},
		{"cycle", "services:\n  a:\n    depends_on: [b]\n  b:\n    depends_on: [c]\n  c:\n    depends_on: [a]\n", 3, "services.a.depends_on", "dependency cycle a -> b -> c -> a"},
	})
	// A cycle is reported once, not once per service on it.
	_, err := ParseConfig([]byte("services:\n  a: {depends_on: [b]}\n  b: {depends_on: [a]}\n"), "w.yaml")
	if err == nil || strings.Count(err.Error(), "dependency cycle") != 1 {
		t.Fatalf("a cycle of two: %v", err)
	}
}
