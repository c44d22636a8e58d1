package fsm

import (
	"cmp"
	"slices"
	"time"
)

// The restart policy: repeats of the down actions while a service stays
// down, and flapping protection. Whether a service flaps is decided when an
// incident opens, from the times of its recent incidents, all stamped by
// leaders. Decisions that only the passing of time brings (a repeat is due,
// a flapping service has been stable long enough) are taken by the leader's
// watcher from Due and committed as Repeats and Stable, stamped with its
// clock; Apply checks them against the committed state, so it stays
// deterministic and a late or retried proposal changes nothing.

// flaps reports whether opening an incident at `at` makes the service
// flapping: it went down more than FlapThreshold times within FlapWindow,
// this time included.
func flaps(s *Service, at int64) bool {
	if s.Def.FlapThreshold <= 0 {
		return false
	}
	since := at - int64(s.Def.FlapWindow)
	n := 1
	for _, inc := range s.Incidents {
		if inc.Opened >= since {
			n++
		}
	}
	return n > s.Def.FlapThreshold
}

// waits reports whether the service may owe a timed decision: the end of
// its flapping, or a repeat. A paused service owes neither.
func waits(s *Service) bool {
	cur := s.Current()
	if cur == nil || cur.Resolved != 0 || s.Status == StatusPaused || cur.Suppressed() {
		return false
	}
	return cur.Flapping || repeatsLeft(s, cur)
}

func repeatsLeft(s *Service, cur *Incident) bool {
	return s.Status == StatusDown && s.Def.Repeat > 0 && !cur.Suppressed() &&
		(s.Def.MaxRepeats == 0 || cur.Repeats < s.Def.MaxRepeats)
}

// repeatDue is when the next repeat of cur is due: Repeat after the down
// actions were last owed, doubling with each repeat up to MaxRepeatGap.
func repeatDue(def *Definition, cur *Incident) int64 {
	gap := def.Repeat
	for range cur.Repeats {
		// Bounded by the gap, not the count: a restored record could
		// claim any number of repeats.
		if gap <= 0 || gap >= MaxRepeatGap {
			break
		}
		gap *= 2
	}
	return max(cur.Notified, cur.Opened) + int64(min(gap, MaxRepeatGap))
}

// stableAt is when a flapping incident counts as stable.
func stableAt(def *Definition, cur *Incident) int64 { return cur.Changed + int64(def.FlapWindow) }

// Due lists the timed decisions owed at now: repeats due and flapping
// services that have been stable for their window. It also returns when
// the next one falls due (zero when none is waiting), so the watcher
// wakes up in time.
func (f *FSM) Due(now time.Time) (repeats []RepeatDue, stable []StableDue, next time.Time) {
	nowNS := now.UnixNano()
	f.mu.RLock()
	for id := range f.timed {
		s := f.services[id]
		cur := s.Current()
		at := repeatDue(s.Def, cur)
		if cur.Flapping {
			at = stableAt(s.Def, cur)
		}
		switch {
		case at > nowNS:
			next = earliest(next, time.Unix(0, at))
		case cur.Flapping:
			stable = append(stable, StableDue{Service: id, Incident: cur.ID, Changed: cur.Changed})
		default:
			repeats = append(repeats, RepeatDue{Service: id, Incident: cur.ID, N: cur.Repeats + 1})
		}
	}
	f.mu.RUnlock()
	slices.SortFunc(repeats, func(a, b RepeatDue) int { return cmp.Compare(a.Service, b.Service) })
	slices.SortFunc(stable, func(a, b StableDue) int { return cmp.Compare(a.Service, b.Service) })
	return repeats, stable, next
}

// openIncident returns the service's open incident if it is the one named.
func (f *FSM) openIncident(service, incident string) (*Service, *Incident) {
	s, ok := f.services[service]
	if !ok {
		return nil, nil
	}
	cur := s.Current()
	if cur == nil || cur.ID != incident || cur.Resolved != 0 {
		return nil, nil
	}
	return s, cur
}

func (f *FSM) applyRepeats(c Repeats) {
	for _, it := range c.Items {
		s, cur := f.openIncident(it.Service, it.Incident)
		if s == nil || cur.Flapping || !repeatsLeft(s, cur) || cur.Repeats != it.N-1 || c.At < repeatDue(s.Def, cur) {
			continue
		}
		inc := *cur
		inc.Repeats, inc.Notified = it.N, c.At
		// Earlier repeats that are finished leave the record (the history
		// keeps their outcome), so an incident down for months stays small.
		runs := slices.DeleteFunc(slices.Clone(inc.Actions), func(r ActionRun) bool {
			return r.Event == EventRepeat && r.State != ActionPending
		})
		inc.Actions = appendRuns(runs, s.Def.Actions, EventRepeat, it.N, c.At)
		f.replaceCurrent(s, inc)
		f.record(s, Record{At: c.At, Event: EventRepeat, Incident: inc.ID, Repeat: it.N})
	}
}

// applyStable ends flapping. A service that settled up has its incident
// resolved and its recovery actions owed; one that settled down is told
// about as a fresh down (and repeats count from now).
func (f *FSM) applyStable(c Stable) {
	for _, it := range c.Items {
		s, cur := f.openIncident(it.Service, it.Incident)
		if s == nil || !cur.Flapping || cur.Changed != it.Changed || s.Status == StatusPaused || c.At < stableAt(s.Def, cur) {
			continue
		}
		inc := *cur
		inc.Flapping = false
		f.record(s, Record{At: c.At, Event: EventStable, Incident: inc.ID})
		if s.Status == StatusUp {
			inc.Resolved = c.At
			inc.Actions = appendRuns(slices.Clone(inc.Actions), s.Def.OnRecovered, EventRecovered, 0, c.At)
			f.record(s, Record{At: c.At, Event: EventRecovered, Incident: inc.ID})
		} else {
			inc.Notified, inc.Repeats = c.At, 0
			inc.Actions = appendRuns(slices.Clone(inc.Actions), s.Def.Actions, EventDown, 0, c.At)
		}
		f.replaceCurrent(s, inc)
	}
}
