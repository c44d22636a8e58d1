package watcher

import (
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// A scheduled service's notifications name its schedule, not a 0s timeout.
func TestNotificationsNameTheSchedule(t *testing.T) {
	ev := Event{Service: "backup", Kind: fsm.EventDown, Reason: fsm.ReasonTimeout, LastSeen: time.Unix(0, 0),
		Schedule: "30 2 * * * (Europe/Berlin), grace 30m0s"}
	for what, text := range map[string]string{"why": why(ev), "limit": limit(ev)} {
		if !strings.Contains(text, "30 2 * * * (Europe/Berlin), grace 30m0s") || strings.Contains(text, "timeout") {
			t.Errorf("%s: %q", what, text)
		}
	}
	ev.Schedule, ev.Timeout = "", 10*time.Second
	if got := limit(ev); got != "timeout 10s" {
		t.Errorf("limit of a timeout: %q", got)
	}
}
