//go:build watchdog_nextproto

package fsm

import (
	"errors"
	"testing"
)

// buildTags are the tags of this build, for tests that read the source.
const buildTags = "watchdog_nextproto"

func TestNextBuildAppliesNotesAtTheNextProtocol(t *testing.T) {
	if release := max(WindowProtocol, ProtocolSchedules); MinProtocol(KindNote) != release+1 || ProtocolVersion != release+1 {
		t.Fatalf("MinProtocol(KindNote) = %d, ProtocolVersion = %d", MinProtocol(KindNote), ProtocolVersion)
	}
	a := newApplier(t)
	if err, _ := a.apply(Note{At: 1, Service: "a", Text: "x"}).(error); !errors.Is(err, ErrUnknownService) {
		t.Fatalf("note on an unknown service: %v", err)
	}
	a.apply(Heartbeat{At: 1, IDs: []string{"a"}})
	if got := a.apply(Note{At: 2, Service: "a", Text: "hello"}); got != nil {
		t.Fatalf("note: %v", got)
	}
	events, _ := a.f.Events("a", 0)
	if len(events) != 1 || events[0].Event != EventNote || events[0].Note != "hello" {
		t.Fatalf("events: %+v", events)
	}
}
