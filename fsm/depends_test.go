package fsm

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// dependencyApplier defines db, app (depends on db) and web (depends on
// app), each with a page on down and a log on recovery, heard from at 0.
func dependencyApplier(t *testing.T) *applier {
	t.Helper()
	a := newApplier(t)
	def := func(deps ...string) Definition {
		return Definition{Timeout: time.Second, Actions: []string{"page"}, OnRecovered: []string{"log"}, DependsOn: deps}
	}
	for _, d := range []struct {
		id   string
		deps []string
	}{{"db", nil}, {"app", []string{"db"}}, {"web", []string{"app"}}} {
		if err := a.apply(Define{At: 0, Service: d.id, Def: def(d.deps...)}); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func openAt(a *applier, at int64, ids ...string) Opened {
	var opens []Open
	for _, id := range ids {
		opens = append(opens, Open{Service: id, LastSeen: a.service(id).LastSeen})
	}
	return a.apply(Incidents{At: at, Opens: opens}).(Opened)
}

func historyOf(a *applier, id string) string {
	events, _ := a.f.Events(id, 0)
	var names []string
	for _, e := range events {
		n := string(e.Event)
		if e.SuppressedBy != "" {
			n += "(" + e.SuppressedBy + ")"
		}
		names = append(names, n)
	}
	return strings.Join(names, " ")
}

func pendingOf(a *applier, id string) []Event {
	var out []Event
	for _, p := range a.f.PendingActions() {
		if p.Service == id {
			out = append(out, p.Run.Event)
		}
	}
	return out
}

// A service that goes down while its dependency is down opens a suppressed
// incident with no actions; when the dependency recovers and it is still
// down, its down actions are owed then.
func TestSuppressedUntilTheDependencyRecovers(t *testing.T) {
	a := dependencyApplier(t)
	openAt(a, 10, "db")
	openAt(a, 20, "app")
	app, svc := current(a, "app"), a.service("app")
	if app.SuppressedBy != "db" || len(app.Actions) != 0 || svc.WaitsFor() != "db" {
		t.Fatalf("app's incident %+v, want suppressed by db without actions", app)
	}
	if got := historyOf(a, "app"); got != "defined down suppressed(db)" {
		t.Fatalf("app's history: %s", got)
	}
	if p := pendingOf(a, "app"); len(p) != 0 {
		t.Fatalf("app owes %v while suppressed", p)
	}

	a.apply(Heartbeat{At: 30, IDs: []string{"db"}})
	app = current(a, "app")
	if app.Released != 30 || app.Resolved != 0 || !slices.Equal(pendingOf(a, "app"), []Event{EventDown}) {
		t.Fatalf("after db recovered: app %+v owes %v, want its down owed at 30", app, pendingOf(a, "app"))
	}
	if got := historyOf(a, "app"); got != "defined down suppressed(db) down" {
		t.Fatalf("app's history: %s", got)
	}
	// Its recovery is told, as after any down that was.
	a.apply(Heartbeat{At: 40, IDs: []string{"app"}})
	if p := pendingOf(a, "app"); !slices.Equal(p, []Event{EventDown, EventRecovered}) {
		t.Fatalf("app owes %v", p)
	}
}

// A suppressed service that recovers before its dependency owes nothing:
// neither the down nobody was told of, nor a recovery.
func TestSuppressedServiceRecoveringFirstOwesNothing(t *testing.T) {
	a := dependencyApplier(t)
	openAt(a, 10, "db")
	openAt(a, 20, "app")
	a.apply(Heartbeat{At: 30, IDs: []string{"app"}})
	a.apply(Heartbeat{At: 40, IDs: []string{"db"}})
	if p := pendingOf(a, "app"); len(p) != 0 {
		t.Fatalf("app owes %v", p)
	}
	if inc := current(a, "app"); inc.Resolved != 30 || inc.Released != 0 || inc.SuppressedBy != "db" {
		t.Fatalf("app's incident %+v", inc)
	}
}

// Through others: web waits for db, the cause, not for app, which itself
// waits for db. Services that go down in one entry are all down first, so
// the order the leader lists them in does not matter.
func TestSuppressionThroughOthersAndInOneEntry(t *testing.T) {
	a := dependencyApplier(t)
	openAt(a, 10, "web", "app", "db") // web first: db is not down yet when listed
	if by := current(a, "web").SuppressedBy; by != "db" {
		t.Fatalf("web suppressed by %q, want db", by)
	}
	if by := current(a, "app").SuppressedBy; by != "db" {
		t.Fatalf("app suppressed by %q, want db", by)
	}
	if !slices.Equal(pendingOf(a, "db"), []Event{EventDown}) {
		t.Fatalf("db owes %v", pendingOf(a, "db"))
	}
	// db back, app still down: web now waits for app, and says so.
	a.apply(Heartbeat{At: 20, IDs: []string{"db"}})
	if web := current(a, "web"); web.SuppressedBy != "app" || web.Released != 0 {
		t.Fatalf("web %+v, want waiting for app", web)
	}
	// A repeat policy does not run while suppressed... (no repeat set
	// here; see waits) and app's own down is owed now.
	if !slices.Equal(pendingOf(a, "app"), []Event{EventDown}) || len(pendingOf(a, "web")) != 0 {
		t.Fatalf("app owes %v, web %v", pendingOf(a, "app"), pendingOf(a, "web"))
	}
	// Deleting app (what web waits for) releases web.
	a.apply(Delete{At: 30, Service: "app"})
	if web := current(a, "web"); web.Released != 30 || !slices.Equal(pendingOf(a, "web"), []Event{EventDown}) {
		t.Fatalf("web after app was deleted: %+v", web)
	}
	if got := historyOf(a, "web"); got != "defined down suppressed(db) suppressed(app) down" {
		t.Fatalf("web's history: %s", got)
	}
}

// A service that went down before its dependency is not suppressed; a
// fail ping is suppressed like a timeout; a paused dependency is not down.
func TestSuppressionOnlyWhileTheDependencyIsDown(t *testing.T) {
	a := dependencyApplier(t)
	openAt(a, 10, "app")
	openAt(a, 20, "db")
	if app := current(a, "app"); app.SuppressedBy != "" || !slices.Equal(pendingOf(a, "app"), []Event{EventDown}) {
		t.Fatalf("app went down first: %+v", app)
	}
	a.apply(Ping{At: 30, Service: "web", Signal: SignalFail})
	if by := current(a, "web").SuppressedBy; by != "db" {
		t.Fatalf("web failed while db was down: suppressed by %q", by)
	}
	// db paused is not down: web waits for app, down on its own, and is
	// released when app comes back.
	a.apply(Pause{At: 40, Service: "db", Paused: true})
	if web := current(a, "web"); web.SuppressedBy != "app" || web.Released != 0 {
		t.Fatalf("db paused: web %+v, want waiting for app", web)
	}
	a.apply(Heartbeat{At: 50, IDs: []string{"app"}})
	if web := current(a, "web"); web.Released != 50 {
		t.Fatalf("app back: web %+v, want released", web)
	}
}

// Suppression, release and waiting survive a snapshot: a replica restored
// from one releases the same incident at the same time.
func TestSuppressionSurvivesASnapshot(t *testing.T) {
	a := dependencyApplier(t)
	a.apply(Define{At: 1, Service: "app", Def: Definition{Timeout: time.Second, Actions: []string{"page"},
		DependsOn: []string{"db"}, Repeat: time.Second}})
	openAt(a, 10, "db")
	openAt(a, 20, "app")
	if repeats, _, _ := a.f.Due(time.Unix(0, 1e12)); len(repeats) != 0 {
		t.Fatalf("repeats due %v: a suppressed incident must not repeat", repeats)
	}
	restored := New()
	if err := restored.Restore(readCloser(persist(t, a.f))); err != nil {
		t.Fatal(err)
	}
	b := &applier{t: t, f: restored, index: a.index}
	for _, x := range []*applier{a, b} {
		x.apply(Heartbeat{At: 30, IDs: []string{"db"}})
	}
	assertSameState(t, a.f, b.f)
	if inc := current(b, "app"); inc.Released != 30 {
		t.Fatalf("restored replica: %+v", inc)
	}
}

func TestDependencyCycle(t *testing.T) {
	graph := map[string][]string{"a": {"b"}, "b": {"c", "d"}, "d": {"a"}, "e": {"e"}}
	deps := func(id string) []string { return graph[id] }
	if got := CycleString(DependencyCycle("a", deps)); got != "a -> b -> d -> a" {
		t.Errorf("cycle through a: %q", got)
	}
	if got := CycleString(DependencyCycle("e", deps)); got != "e -> e" {
		t.Errorf("cycle through e: %q", got)
	}
	if got := DependencyCycle("c", deps); got != nil {
		t.Errorf("c is on no cycle, got %v", got)
	}
}
