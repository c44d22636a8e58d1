package fsm

import (
	"bytes"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// A window pauses until its end; WindowsDue finds it only once that end
// has come, and the WindowEnd the leader commits then resumes the service
// with a full timeout from the commit, once.
func TestWindowEndsByItselfWithAFullTimeout(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 1 * sec, IDs: []string{"db", "web"}})
	got := a.apply(Window{At: 2 * sec, Services: []string{"db", "nobody"}, Paused: true, Until: 100 * sec})
	if !reflect.DeepEqual(got, Windowed{"db"}) {
		t.Fatalf("window changed %v, want [db]", got)
	}
	if db := a.service("db"); db.Status != StatusPaused || db.PausedUntil != 100*sec {
		t.Fatalf("db = %+v", db)
	}
	if due, next := a.f.WindowsDue(time.Unix(0, 99*sec)); len(due) != 0 || next != time.Unix(0, 100*sec) {
		t.Fatalf("before the end: due %v, next %v", due, next)
	}
	// Too early a proposal (a leader whose clock runs behind) is refused.
	a.apply(WindowEnd{At: 99 * sec, Items: []WindowDue{{Service: "db", Until: 100 * sec}}})
	if a.service("db").Status != StatusPaused {
		t.Fatal("an early WindowEnd resumed db")
	}
	due, next := a.f.WindowsDue(time.Unix(0, 100*sec))
	if !reflect.DeepEqual(due, []WindowDue{{Service: "db", Until: 100 * sec}}) || !next.IsZero() {
		t.Fatalf("at the end: due %v, next %v", due, next)
	}
	a.apply(WindowEnd{At: 101 * sec, Items: due})
	a.apply(WindowEnd{At: 102 * sec, Items: due}) // retried: nothing more
	db := a.service("db")
	if db.Status != StatusUp || db.PausedUntil != 0 || db.LastSeen != 101*sec {
		t.Fatalf("after the end db = %+v, want up, watched from 101s", db)
	}
	if due, _ := a.f.WindowsDue(time.Unix(0, 200*sec)); len(due) != 0 {
		t.Fatalf("an ended window still due: %v", due)
	}
	events, _ := a.f.Events("db", 0)
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, string(e.Event))
	}
	if !slices.Equal(kinds, []string{"paused", "resumed"}) || events[0].Until != 100*sec || events[1].Until != 100*sec {
		t.Fatalf("history %+v", events)
	}
}

// Whatever happened to the window since the leader saw it due wins: a
// window moved, lifted by a plain pause, or ended by a resume.
func TestWindowEndLeavesAChangedWindowAlone(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 1 * sec, IDs: []string{"a", "b", "c"}})
	a.apply(Window{At: 2 * sec, Services: []string{"a", "b", "c"}, Paused: true, Until: 10 * sec})
	stale := []WindowDue{{"a", 10 * sec}, {"b", 10 * sec}, {"c", 10 * sec}}
	a.apply(Window{At: 3 * sec, Services: []string{"a"}, Paused: true, Until: 50 * sec}) // moved
	a.apply(Pause{At: 4 * sec, Service: "b", Paused: true})                              // for good
	if got := a.apply(Window{At: 5 * sec, Services: []string{"c", "a"}}); !reflect.DeepEqual(got, Windowed{"c", "a"}) {
		t.Fatalf("resume changed %v", got)
	}
	a.apply(Window{At: 6 * sec, Services: []string{"a"}, Paused: true, Until: 50 * sec})
	a.apply(WindowEnd{At: 11 * sec, Items: stale})
	if s := a.service("a"); s.Status != StatusPaused || s.PausedUntil != 50*sec {
		t.Fatalf("a = %+v: a stale end resumed its moved window", s)
	}
	if s := a.service("b"); s.Status != StatusPaused || s.PausedUntil != 0 {
		t.Fatalf("b = %+v: a plain pause must hold until resumed", s)
	}
	if s := a.service("c"); s.Status != StatusUp || s.LastSeen != 5*sec {
		t.Fatalf("c = %+v: resumed at 5s", s)
	}
	if due, next := a.f.WindowsDue(time.Unix(0, 20*sec)); len(due) != 0 || next != time.Unix(0, 50*sec) {
		t.Fatalf("due %v next %v: only a's window is open", due, next)
	}
	// Pausing again with the same end changes nothing, and says so.
	if got := a.apply(Window{At: 7 * sec, Services: []string{"a"}, Paused: true, Until: 50 * sec}); len(got.(Windowed)) != 0 {
		t.Fatalf("the same window again changed %v", got)
	}
}

// A service paused while down with its incident open is down again when
// its window ends, as when an operator resumes it.
func TestWindowEndOfADownServiceLeavesItDown(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 1 * sec, IDs: []string{"db"}})
	a.apply(Incidents{At: 20 * sec, Opens: []Open{{Service: "db", LastSeen: 1 * sec}}})
	a.apply(Window{At: 21 * sec, Services: []string{"db"}, Paused: true, Until: 30 * sec})
	a.apply(WindowEnd{At: 30 * sec, Items: []WindowDue{{"db", 30 * sec}}})
	if db := a.service("db"); db.Status != StatusDown || db.Current().Resolved != 0 {
		t.Fatalf("db = %+v, want down with its incident open", db)
	}
}

// The window's end is in the snapshot: a restored replica (a new node, a
// restart, a restore) resumes it as the one it came from would.
func TestWindowSurvivesSnapshotAndRestore(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 1 * sec, IDs: []string{"db", "web"}})
	a.apply(Window{At: 2 * sec, Services: []string{"db", "web"}, Paused: true, Until: 100 * sec})
	a.apply(Delete{At: 3 * sec, Service: "web"})
	restored := New()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(persist(t, a.f)))); err != nil {
		t.Fatal(err)
	}
	assertSameState(t, a.f, restored)
	due, _ := restored.WindowsDue(time.Unix(0, 100*sec))
	if !reflect.DeepEqual(due, []WindowDue{{"db", 100 * sec}}) {
		t.Fatalf("restored windows due: %v", due)
	}
	// A record that claims a window on a service that is not paused is
	// not one Apply could have made.
	bad := strings.Replace(string(persist(t, a.f)), `"status":"paused","last_seen":1000000000,"paused_until"`,
		`"status":"up","last_seen":1000000000,"paused_until"`, 1)
	if bad == string(persist(t, a.f)) {
		t.Fatal("the test's snapshot edit did not apply")
	}
	if err := New().Restore(io.NopCloser(strings.NewReader(bad))); err == nil || !strings.Contains(err.Error(), "window end") {
		t.Fatalf("restore of a window on an up service: %v", err)
	}
}

func TestWindowKindsNeedTheWindowProtocol(t *testing.T) {
	for _, k := range []Kind{KindWindow, KindWindowEnd} {
		if MinProtocol(k) != WindowProtocol || k&Ignorable != 0 {
			t.Errorf("kind %d: protocol %d, want %d and not ignorable", k, MinProtocol(k), WindowProtocol)
		}
	}
	if ProtocolVersion < WindowProtocol {
		t.Fatalf("this build speaks protocol %d, below its own windows", ProtocolVersion)
	}
	for _, c := range []Command{Window{At: 1, Services: []string{"a"}, Paused: true, Until: 2}, WindowEnd{At: 3, Items: []WindowDue{{"a", 2}}}} {
		b, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Decode(b); err != nil || !reflect.DeepEqual(got, c) {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", c, got, err)
		}
	}
}
