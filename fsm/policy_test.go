package fsm

import (
	"reflect"
	"testing"
	"time"
)

// sec is a second in Unix ns, untyped so it serves as a time and a duration.
const sec = 1_000_000_000

// downAt makes the service silent: the leader finds it overdue at `at`.
func (a *applier) downAt(id string, at int64) string {
	a.t.Helper()
	s := a.service(id)
	return a.apply(Incidents{At: at, Opens: []Open{{Service: id, LastSeen: s.LastSeen}}}).(Opened)[0]
}

func (a *applier) current(id string) Incident {
	a.t.Helper()
	s := a.service(id)
	if s.Current() == nil {
		a.t.Fatalf("%s has no incident", id)
	}
	return *s.Current()
}

func pendingEvents(f *FSM) []Event {
	var out []Event
	for _, p := range f.PendingActions() {
		out = append(out, p.Run.Event)
	}
	return out
}

func (a *applier) finishAll(at int64) {
	a.t.Helper()
	for _, p := range a.f.PendingActions() {
		a.apply(ActionResult{At: at, Service: p.Service, Incident: p.Incident, Action: p.Run.Action,
			Event: p.Run.Event, Repeat: p.Run.Repeat, State: ActionDone, Attempts: 1})
	}
}

func TestFlappingHoldsNotificationsUntilStable(t *testing.T) {
	a := newApplier(t)
	def := Definition{Timeout: sec, Actions: []string{"page"}, OnRecovered: []string{"page"},
		FlapThreshold: 2, FlapWindow: time.Duration(60 * sec)}
	a.apply(Configure{At: 1, Defaults: *DefaultDefinition(), Services: map[string]Definition{"w": def}})
	now := int64(100 * sec)
	// Two downs within the window are ordinary incidents.
	for range 2 {
		a.downAt("w", now)
		a.apply(Heartbeat{At: now + sec, IDs: []string{"w"}})
		a.finishAll(now + sec)
		now += 5 * sec
	}
	// The third goes beyond the threshold: one flapping notification.
	id := a.downAt("w", now)
	s := a.service("w")
	if !s.Flapping() || s.Status != StatusDown || len(s.Incidents) != 3 {
		t.Fatalf("after the third down: %+v", s)
	}
	if got := pendingEvents(a.f); !reflect.DeepEqual(got, []Event{EventFlapping}) {
		t.Fatalf("owed %v, want one flapping notification", got)
	}
	a.finishAll(now)
	// Up and down again: same incident, nothing owed.
	for range 3 {
		now += sec
		a.apply(Heartbeat{At: now, IDs: []string{"w"}})
		if s := a.service("w"); s.Status != StatusUp || s.Current().ID != id || s.Current().Resolved != 0 {
			t.Fatalf("up while flapping: %+v", s.Current())
		}
		now += 2 * sec
		if got := a.downAt("w", now); got != id {
			t.Fatalf("down while flapping opened %q, want the flapping incident %q", got, id)
		}
	}
	if p := a.f.PendingActions(); len(p) != 0 || len(a.service("w").Incidents) != 3 {
		t.Fatalf("while flapping: owed %+v, incidents %d", p, len(a.service("w").Incidents))
	}
	// A beat, then quiet... but not for long enough.
	now += sec
	a.apply(Heartbeat{At: now, IDs: []string{"w"}})
	_, stable, next := a.f.Due(time.Unix(0, now+59*sec))
	if len(stable) != 0 || !next.Equal(time.Unix(0, now+60*sec)) {
		t.Fatalf("stable %v next %v, want none before the window has passed", stable, next)
	}
	a.apply(Stable{At: now + 59*sec, Items: []StableDue{{Service: "w", Incident: id, Changed: now}}})
	if s := a.service("w"); !s.Flapping() {
		t.Fatal("an early Stable took effect")
	}
	_, stable, _ = a.f.Due(time.Unix(0, now+60*sec))
	if want := []StableDue{{Service: "w", Incident: id, Changed: now}}; !reflect.DeepEqual(stable, want) {
		t.Fatalf("stable = %v, want %v", stable, want)
	}
	// A change committed after the leader looked wins over its decision,
	// however late the decision is proposed.
	a.apply(Heartbeat{At: now + 60*sec, IDs: []string{"w"}})
	a.downAt("w", now+61*sec)
	now += 61 * sec
	a.apply(Stable{At: now + 60*sec, Items: stable})
	if s := a.service("w"); !s.Flapping() {
		t.Fatal("a stale Stable took effect")
	}
	// Quiet (down) for the window: told as a fresh down on the same incident.
	a.apply(Stable{At: now + 60*sec, Items: []StableDue{{Service: "w", Incident: id, Changed: now}}})
	s = a.service("w")
	if s.Flapping() || s.Status != StatusDown || s.Current().ID != id || s.Current().Resolved != 0 {
		t.Fatalf("after stable while down: %+v", s.Current())
	}
	if got := pendingEvents(a.f); !reflect.DeepEqual(got, []Event{EventDown}) {
		t.Fatalf("owed %v after stable while down, want down", got)
	}
	wantEvents(t, a.f, "w", EventFlapping, EventUp, EventDown, EventStable)
}

func TestFlappingEndsUpWithARecovery(t *testing.T) {
	a := newApplier(t)
	def := Definition{Timeout: sec, Actions: []string{"page"}, OnRecovered: []string{"page"},
		FlapThreshold: 1, FlapWindow: time.Duration(10 * sec)}
	a.apply(Define{At: 1, Service: "w", Def: def})
	a.downAt("w", 10*sec)
	a.apply(Heartbeat{At: 11 * sec, IDs: []string{"w"}})
	id := a.downAt("w", 13*sec)
	a.apply(Heartbeat{At: 14 * sec, IDs: []string{"w"}})
	a.finishAll(14 * sec)
	_, stable, _ := a.f.Due(time.Unix(0, 24*sec))
	a.apply(Stable{At: 24 * sec, Items: stable})
	s := a.service("w")
	if s.Flapping() || s.Status != StatusUp || s.Current().ID != id || s.Current().Resolved != 24*sec {
		t.Fatalf("after stable while up: %+v", s.Current())
	}
	if got := pendingEvents(a.f); !reflect.DeepEqual(got, []Event{EventRecovered}) {
		t.Fatalf("owed %v, want the recovery of the flapping incident", got)
	}
	// Downs outside the window are ordinary again.
	a.finishAll(25 * sec)
	a.downAt("w", 100*sec)
	if s := a.service("w"); s.Flapping() || !reflect.DeepEqual(pendingEvents(a.f), []Event{EventDown}) {
		t.Fatalf("a lone down long after: flapping %v, owed %v", s.Flapping(), pendingEvents(a.f))
	}
}

func TestRepeatsBackOffAndStop(t *testing.T) {
	a := newApplier(t)
	def := Definition{Timeout: sec, Actions: []string{"page", "restart"}, Repeat: time.Duration(10 * sec), MaxRepeats: 3}
	a.apply(Define{At: 1, Service: "r", Def: def})
	id := a.downAt("r", 100*sec)
	a.finishAll(100 * sec)
	// Due 10 s, then 20 s, then 40 s after the previous one.
	at := int64(100 * sec)
	for n, gap := range []int64{10, 20, 40} {
		due := at + gap*sec
		reps, _, next := a.f.Due(time.Unix(0, due-1))
		if len(reps) != 0 || !next.Equal(time.Unix(0, due)) {
			t.Fatalf("repeat %d: due %v next %v before its time, want next %v", n+1, reps, next, time.Unix(0, due))
		}
		early := Repeats{At: due - 1, Items: []RepeatDue{{Service: "r", Incident: id, N: n + 1}}}
		if a.apply(early); a.current("r").Repeats != n {
			t.Fatalf("repeat %d committed before it was due", n+1)
		}
		reps, _, _ = a.f.Due(time.Unix(0, due))
		if want := []RepeatDue{{Service: "r", Incident: id, N: n + 1}}; !reflect.DeepEqual(reps, want) {
			t.Fatalf("due = %v, want %v", reps, want)
		}
		a.apply(Repeats{At: due, Items: reps})
		a.apply(Repeats{At: due + 1, Items: reps}) // retried: nothing more
		p := a.f.PendingActions()
		if len(p) != 2 || p[0].Run.Event != EventRepeat || p[0].Run.Repeat != n+1 || p[1].Run.Action != "restart" {
			t.Fatalf("repeat %d owes %+v", n+1, p)
		}
		a.finishAll(due)
		at = due
	}
	if reps, _, next := a.f.Due(time.Unix(0, at+1000*sec)); len(reps) != 0 || !next.IsZero() {
		t.Fatalf("after max_repeats: due %v next %v", reps, next)
	}
	inc := a.current("r")
	if n := len(inc.Actions); n != 4 { // the down runs and the last repeat's
		t.Fatalf("incident keeps %d runs after three repeats: %+v", n, inc.Actions)
	}
	wantEvents(t, a.f, "r", EventDown, EventDelivery, EventDelivery, EventRepeat)
}

func TestRepeatsStopWhenTheServiceRecoversOrPauses(t *testing.T) {
	a := newApplier(t)
	a.apply(Define{At: 1, Service: "r", Def: Definition{Timeout: sec, Actions: []string{"page"}, Repeat: time.Duration(sec)}})
	id := a.downAt("r", 10*sec)
	a.apply(Pause{At: 10 * sec, Service: "r", Paused: true})
	if reps, _, _ := a.f.Due(time.Unix(0, 100*sec)); len(reps) != 0 {
		t.Fatalf("a paused service owes repeats: %v", reps)
	}
	a.apply(Repeats{At: 100 * sec, Items: []RepeatDue{{Service: "r", Incident: id, N: 1}}})
	if a.current("r").Repeats != 0 {
		t.Fatal("a repeat took effect while paused")
	}
	a.apply(Pause{At: 101 * sec, Service: "r"})
	if reps, _, _ := a.f.Due(time.Unix(0, 101*sec)); len(reps) != 1 {
		t.Fatalf("resumed while down: due %v, want a repeat", reps)
	}
	a.apply(Heartbeat{At: 101 * sec, IDs: []string{"r"}})
	if reps, _, next := a.f.Due(time.Unix(0, 200*sec)); len(reps) != 0 || !next.IsZero() {
		t.Fatalf("recovered: due %v next %v", reps, next)
	}
}

func TestRepeatGapIsCapped(t *testing.T) {
	def := &Definition{Repeat: time.Hour}
	inc := &Incident{Opened: 5, Repeats: 1000}
	if got := repeatDue(def, inc); got != 5+int64(MaxRepeatGap) {
		t.Fatalf("gap after 1000 repeats = %v, want %v", time.Duration(got-5), MaxRepeatGap)
	}
}

func TestGraceDelaysTheDeadline(t *testing.T) {
	a := newApplier(t)
	a.apply(Define{At: 0, Service: "g", Def: Definition{Timeout: 3 * time.Second, Grace: 2 * time.Second}})
	base := time.Unix(1000, 0)
	a.apply(Heartbeat{At: base.UnixNano(), IDs: []string{"g"}})
	if due, next := a.f.Overdue(base.Add(4*time.Second), time.Time{}); len(due) != 0 || !next.Equal(base.Add(5*time.Second)) {
		t.Fatalf("within grace: due %v next %v, want none and base+5s", due, next)
	}
	if due, _ := a.f.Overdue(base.Add(5*time.Second), time.Time{}); len(due) != 1 {
		t.Fatalf("after timeout and grace: due %v", due)
	}
	if g := a.service("g"); !g.Deadline(base.Add(time.Minute)).Equal(base.Add(65 * time.Second)) {
		t.Fatalf("failover deadline %v, want the new leader start plus timeout and grace", g.Deadline(base.Add(time.Minute)))
	}
}
