package fsm

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// A service defined before anything was heard from it is shown new (as
// healthchecks shows a check before its first ping) until its first
// heartbeat or incident; it is watched all the same from its definition.
func TestNewUntilFirstHeartbeatOrIncident(t *testing.T) {
	a := newApplier(t)
	a.apply(Configure{At: 10, Defaults: Definition{Timeout: time.Second},
		Services: map[string]Definition{"cfg": {Timeout: time.Second}, "silent": {Timeout: time.Second}}})
	a.apply(Define{At: 11, Service: "api", Def: Definition{Timeout: time.Second}})
	a.apply(Heartbeat{At: 12, IDs: []string{"auto"}})
	for id, want := range map[string]Status{"cfg": StatusNew, "silent": StatusNew, "api": StatusNew, "auto": StatusUp} {
		if s := a.service(id); s.Shown() != want || s.Status != StatusUp {
			t.Fatalf("%s shown %s (status %s), want %s (status up)", id, s.Shown(), s.Status, want)
		}
	}
	// Detection is unchanged: a new service is due from its definition.
	due, _ := a.f.Overdue(time.Unix(0, 11+int64(time.Second)+1), time.Unix(0, 0))
	if len(due) != 4 {
		t.Fatalf("overdue = %+v, want all four: new ones are watched from their definition", due)
	}

	a.apply(Ping{At: 20, Service: "api", Signal: SignalStart})
	if s := a.service("api"); s.Shown() != StatusNew {
		t.Fatalf("api after a start: %s, want still new (healthchecks too)", s.Shown())
	}
	a.apply(Heartbeat{At: 21, IDs: []string{"cfg"}})
	a.apply(Ping{At: 21, Service: "api", Signal: SignalSuccess})
	for _, id := range []string{"cfg", "api"} {
		if s := a.service(id); s.Shown() != StatusUp || s.New {
			t.Fatalf("%s after its first beat: %s", id, s.Shown())
		}
	}
	a.apply(Incidents{At: 30, Opens: []Open{{Service: "silent", LastSeen: 10}}})
	a.apply(Pause{At: 31, Service: "silent", Paused: true})
	a.apply(Pause{At: 32, Service: "silent", Paused: false})
	if s := a.service("silent"); s.New || s.Shown() != StatusDown {
		t.Fatalf("silent after its incident: %s, new %v: want down, and never new again", s.Shown(), s.New)
	}

	// Replicated through snapshots.
	a.apply(Define{At: 40, Service: "later", Def: Definition{Timeout: time.Second}})
	restored := New()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(persist(t, a.f)))); err != nil {
		t.Fatal(err)
	}
	if s, _ := restored.Service("later"); s.Shown() != StatusNew {
		t.Fatalf("later after a restore: %s", s.Shown())
	}
	if s, _ := restored.Service("cfg"); s.Shown() != StatusUp {
		t.Fatalf("cfg after a restore: %s", s.Shown())
	}
}

// A heartbeat that brings a service back answers with the recovery, for
// the leader that proposed it to log; one that changes nothing, with nil.
func TestHeartbeatAnswersItsRecoveries(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 1, IDs: []string{"web", "db"}})
	opened := a.apply(Incidents{At: 5 * int64(time.Second), Opens: []Open{{Service: "web", LastSeen: 1}}}).(Opened)
	if got := a.apply(Heartbeat{At: 6 * int64(time.Second), IDs: []string{"db"}}); got != nil {
		t.Fatalf("a heartbeat of an up service answered %#v", got)
	}
	got, _ := a.apply(Heartbeat{At: 7 * int64(time.Second), IDs: []string{"db", "web"}}).(Recoveries)
	if len(got) != 1 || got[0] != (Recovery{Service: "web", Incident: opened[0], DownFor: 2 * time.Second}) {
		t.Fatalf("recoveries %+v, want web after 2s of incident %s", got, opened[0])
	}
	a.apply(Incidents{At: 8 * int64(time.Second), Opens: []Open{{Service: "web", LastSeen: 7 * int64(time.Second)}}})
	if got, _ := a.apply(Ping{At: 9 * int64(time.Second), Service: "web", Signal: SignalSuccess}).(Recoveries); len(got) != 1 {
		t.Fatalf("a success ping's recoveries: %+v", got)
	}
}
