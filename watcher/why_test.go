package watcher

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// failedRun is worker-1 reporting exit status 23 with a note, as
// `curl --data-raw "rsync: disk full (exit 23)" .../ping/worker-1/23` does.
func failedRun() Event {
	ev := testEvent()
	ev.Reason, ev.ExitStatus, ev.Note = fsm.ReasonExitStatus, 23, "rsync: disk full (exit 23)"
	// A fail ping opens the incident at once: it is the last contact.
	ev.LastSeen, ev.DownSince = ev.Time, ev.Time
	return ev
}

// recoveredRun is its recovery 5 minutes later, by a ping with a note.
func recoveredRun() Event {
	ev := failedRun()
	ev.Kind, ev.Time, ev.RecoveryNote = fsm.EventRecovered, ev.DownSince.Add(5*time.Minute), "rsync: 3 GB sent"
	return ev
}

func TestEveryNotificationSaysWhy(t *testing.T) {
	down, up := failedRun(), recoveredRun()
	repeat := down
	repeat.Kind, repeat.Repeat, repeat.Time = fsm.EventRepeat, 1, down.DownSince.Add(time.Hour)

	p := webhookPayload(down)
	if p.Reason != "exit_status" || p.ExitStatus != 23 || p.Note != down.Note ||
		p.DownSince != stampNano(down.DownSince) || p.DownFor != "0s" || p.RecoveredAt != "" {
		t.Errorf("webhook, down: %+v", p)
	}
	if p := webhookPayload(repeat); p.DownFor != "1h0m0s" {
		t.Errorf("webhook, repeat: down_for %q, want 1h0m0s", p.DownFor)
	}
	p = webhookPayload(up)
	if p.DownFor != "5m0s" || p.RecoveredAt != stampNano(up.Time) || p.RecoveryNote != "rsync: 3 GB sent" || p.Note != down.Note {
		t.Errorf("webhook, recovered: %+v", p)
	}

	m := slackMessage(down, down.Time)
	if !strings.Contains(m.Text, "*worker-1* is DOWN (exit status 23)") ||
		!hasField(m, "Reason", "exit status 23") || !hasField(m, "Note", "rsync: disk full (exit 23)") || !hasField(m, "Down for", "0s") {
		t.Errorf("slack, down: %q %+v", m.Text, m.Attachments[0].Fields)
	}
	if m := slackMessage(repeat, repeat.Time); !strings.Contains(m.Text, "is still DOWN after 1h0m0s (exit status 23)") {
		t.Errorf("slack, repeat: %q", m.Text)
	}
	m = slackMessage(up, up.Time)
	if !strings.Contains(m.Text, "is UP again after 5m0s down") || !hasField(m, "Downtime", "5m0s") ||
		!hasField(m, "Recovered at", stamp(up.Time)) || !hasField(m, "Recovery note", "rsync: 3 GB sent") {
		t.Errorf("slack, recovered: %q %+v", m.Text, m.Attachments[0].Fields)
	}

	body := emailBody(down, down.Time)
	for _, line := range []string{
		"worker-1 is DOWN: it reported exit status 23 at 2026-11-25T10:00:30Z (0s ago).",
		"Reason:         exit status 23", "Note:           rsync: disk full (exit 23)",
		"Down since:     2026-11-25T10:00:30Z", "Down for:       0s",
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("e-mail, down: no line %q in\n%s", line, body)
		}
	}
	body = emailBody(up, up.Time)
	for _, line := range []string{"Downtime:       5m0s", "Recovered at:   2026-11-25T10:05:30Z", "Recovery note:  rsync: 3 GB sent"} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("e-mail, recovered: no line %q in\n%s", line, body)
		}
	}

	pd := pagerDutyEvent("key", down)
	details := pd.Payload.CustomDetails
	if pd.Payload.Summary != "worker-1 is DOWN: it reported exit status 23 at 2026-11-25T10:00:30Z" ||
		details["reason"] != "exit_status" || details["exit_status"] != "23" || details["note"] != down.Note ||
		details["down_for"] != "0s" || details["down_since"] != stampNano(down.DownSince) {
		t.Errorf("pagerduty, down: %q %v", pd.Payload.Summary, details)
	}
	if pd := pagerDutyEvent("key", repeat); !strings.HasPrefix(pd.Payload.Summary, "worker-1 is still DOWN: it reported exit status 23") {
		t.Errorf("pagerduty, repeat: %q", pd.Payload.Summary)
	}
}

func hasField(m SlackMessage, title, value string) bool {
	return slices.Contains(m.Attachments[0].Fields, SlackField{Title: title, Value: value, Short: len(value) < 40 && title != "Note" && title != "Recovery note"})
}

// An exec action sees the event and PATH, and nothing of the agent's own
// environment: not its config's path, not an operator's secret.
func TestExecEnvironmentIsTheEventOnly(t *testing.T) {
	t.Setenv("SECRET_X", "operator-secret")
	t.Setenv("WATCHDOG_CONFIG", "/etc/watchdog/config.yaml")
	t.Setenv("WATCHDOG_DATA", "/var/lib/watchdog")
	out := filepath.Join(t.TempDir(), "env")
	e := Exec{Argv: []string{"/bin/sh", "-c", `env > "$0"`, out}, Timeout: 10 * time.Second, Log: slog.New(slog.DiscardHandler)}
	ev := recoveredRun()
	ev.LastSeen = ev.LastSeen.Add(456789 * time.Nanosecond)
	if err := e.Run(context.Background(), ev); err != nil {
		t.Fatalf("Run: %v", err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	// sh itself adds PWD (and, in some shells, SHLVL and _): not ours.
	for _, k := range []string{"PWD", "SHLVL", "_"} {
		delete(got, k)
	}
	want := map[string]string{
		"PATH":                   ExecPath,
		"WATCHDOG_SERVICE_ID":    "worker-1",
		"WATCHDOG_EVENT":         "recovered",
		"WATCHDOG_REPEAT":        "",
		"WATCHDOG_INCIDENT_ID":   "12-0",
		"WATCHDOG_EVENT_TIME":    "2026-11-25T10:05:30.127Z",
		"WATCHDOG_LAST_SEEN":     "2026-11-25T10:00:30.127456789Z",
		"WATCHDOG_TIMEOUT":       "30s",
		"WATCHDOG_REASON":        "exit_status",
		"WATCHDOG_EXIT_STATUS":   "23",
		"WATCHDOG_NOTE":          "rsync: disk full (exit 23)",
		"WATCHDOG_DOWN_SINCE":    "2026-11-25T10:00:30.127Z",
		"WATCHDOG_DOWN_FOR":      "5m0s",
		"WATCHDOG_RECOVERED_AT":  "2026-11-25T10:05:30.127Z",
		"WATCHDOG_RECOVERY_NOTE": "rsync: 3 GB sent",
		"WATCHDOG_NODE":          "n2",
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %q (set: %v), want %q", k, g, ok, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("the action's environment holds %s=%q, which is not the event's", k, got[k])
		}
	}
}
