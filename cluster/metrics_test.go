package cluster

import (
	"testing"

	"github.com/watchdog-ha/watchdog/fsm"
)

// The apply latency of every kind this build knows is labelled with the
// kind's name, never "other"; the names of released kinds are part of the
// metrics' interface and never change.
func TestApplyLatencyLabelsEveryKindByName(t *testing.T) {
	for _, k := range fsm.Kinds() {
		if name := kindName(k); name == "other" || name == "" {
			t.Errorf("kind %d is labelled %q", k, name)
		}
	}
	released := map[fsm.Kind]string{
		fsm.KindHeartbeat: "heartbeat", fsm.KindConfigure: "configure", fsm.KindIncidents: "incidents",
		fsm.KindActionResult: "action_result", fsm.KindPause: "pause", fsm.KindRepeats: "repeats",
		fsm.KindStable: "stable", fsm.KindDefine: "define", fsm.KindDelete: "delete", fsm.KindAttempt: "attempt",
		fsm.KindPing: "ping", fsm.KindWindow: "window", fsm.KindWindowEnd: "window_end",
	}
	for k, want := range released {
		if got := kindName(k); got != want {
			t.Errorf("kind %d is labelled %q, want %q", k, got, want)
		}
	}
	for _, k := range []fsm.Kind{0, 15, fsm.Ignorable | 0x33, 255} {
		if got := kindName(k); got != "other" {
			t.Errorf("unknown kind %d is labelled %q, want other", k, got)
		}
	}
}
