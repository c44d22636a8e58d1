package fsm

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestPingStartKeepsAliveThenRunOverdue(t *testing.T) {
	a := newApplier(t)
	a.apply(Configure{At: 0, Defaults: Definition{Timeout: 3 * time.Second, Actions: []string{"log"}}})
	base := time.Unix(1000, 0)
	a.apply(Heartbeat{At: base.UnixNano(), IDs: []string{"job"}})
	start := base.Add(2 * time.Second)
	a.apply(Ping{At: start.UnixNano(), Service: "job", Signal: SignalStart, RunID: "r1"})
	// The start restarts the timeout: not due at base+4s, due at start+3s.
	if due, _ := a.f.Overdue(base.Add(4*time.Second), base); len(due) != 0 {
		t.Fatalf("due right after the start: %+v", due)
	}
	due, _ := a.f.Overdue(start.Add(3*time.Second), base)
	if len(due) != 1 || due[0].Service != "job" {
		t.Fatalf("due = %+v, want job: a start without success is an incident", due)
	}
	evs, _ := a.f.Events("job", 0)
	if last := evs[len(evs)-1]; last.Event != EventStart || last.RunID != "r1" {
		t.Fatalf("last event = %+v, want start r1", last)
	}
}

func TestPingFailOpensAtOnceAndSuccessRecovers(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 100, IDs: []string{"job"}})
	a.apply(Ping{At: 200, Service: "job", Signal: SignalFail, ExitStatus: 3, Note: "boom"})
	s := a.service("job")
	if s.Status != StatusDown || s.Current() == nil || s.Current().Opened != 200 || len(s.Current().Actions) != 1 {
		t.Fatalf("after fail: %+v, want down with an incident opened at 200 owing log", s)
	}
	a.apply(Ping{At: 300, Service: "job", Signal: SignalSuccess, RunID: "r2", Note: strings.Repeat("x", MaxPingNote+5)})
	if s := a.service("job"); s.Status != StatusUp || s.Current().Resolved != 300 {
		t.Fatalf("after success: %+v, want up with the incident resolved", s)
	}
	evs, _ := a.f.Events("job", 0)
	var got []Event
	for _, e := range evs {
		got = append(got, e.Event)
		switch e.Event {
		case EventFail:
			if e.ExitStatus != 3 || e.Note != "boom" {
				t.Fatalf("fail event = %+v", e)
			}
		case EventSuccess:
			if e.RunID != "r2" || len(e.Note) != MaxPingNote {
				t.Fatalf("success event rid %q note %d bytes", e.RunID, len(e.Note))
			}
		}
	}
	want := "fail down success recovered"
	if strings.Join(eventNames(got), " ") != want {
		t.Fatalf("events = %v, want %s", got, want)
	}
	restored := New()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(persist(t, a.f)))); err != nil {
		t.Fatal(err)
	}
	assertSameState(t, a.f, restored)
}

func TestPingPausedOrUnknownSignalChangesNoStatus(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 100, IDs: []string{"job"}})
	a.apply(Pause{At: 150, Service: "job", Paused: true})
	a.apply(Ping{At: 200, Service: "job", Signal: SignalFail})
	a.apply(Ping{At: 250, Service: "job", Signal: "sideways"})
	if s := a.service("job"); s.Status != StatusPaused || len(s.Incidents) != 0 {
		t.Fatalf("paused job after fail: %+v, want paused without incident", s)
	}
}

func eventNames(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e)
	}
	return out
}
