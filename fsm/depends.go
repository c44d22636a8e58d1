package fsm

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Dependencies, as Alertmanager's inhibition: a service that goes down while
// a service it depends on (directly or through others) is down opens its
// incident suppressed, naming that dependency, and its actions wait. When
// no dependency is down any more and it is still down, its down actions are
// owed then (Incident.Released). All of it is decided by Apply from the
// replicated state, so every replica suppresses and releases the same
// incidents, and a new leader owes exactly what the old one would have.

// EventSuppressed is an incident that opened while a dependency was down:
// its actions wait for the dependency (Record.SuppressedBy).
const EventSuppressed Event = "suppressed"

// MaxDependsOn bounds the services one service depends on directly.
const MaxDependsOn = 32

// Suppressed reports whether the incident's actions wait for a dependency.
func (inc *Incident) Suppressed() bool { return inc.SuppressedBy != "" && inc.Released == 0 }

// WaitsFor is the dependency the service's open incident waits for, "" if
// none does.
func (s *Service) WaitsFor() string {
	if cur := s.Current(); cur != nil && cur.Resolved == 0 && cur.Suppressed() {
		return cur.SuppressedBy
	}
	return ""
}

// checkDepends holds DependsOn to what Apply relies on.
func (d *Definition) checkDepends() error {
	if len(d.DependsOn) > MaxDependsOn {
		return fmt.Errorf("%w: depends_on: at most %d services, got %d", ErrBadDefinition, MaxDependsOn, len(d.DependsOn))
	}
	for i, id := range d.DependsOn {
		switch {
		case id == "":
			return fmt.Errorf("%w: depends_on: an empty id", ErrBadDefinition)
		case slices.Contains(d.DependsOn[:i], id):
			return fmt.Errorf("%w: depends_on: %q is listed more than once", ErrBadDefinition, id)
		}
	}
	return nil
}

// blockedBy is the service s waits for: the first down service s depends
// on, directly or not, depth first in the order DependsOn lists them, and
// of a chain of down services the deepest (web waits for db, not for the
// app between them that is down because db is). "" when none is down.
// Cycles (which the API and the config file refuse) end the walk.
func (f *FSM) blockedBy(s *Service) string {
	seen := map[string]bool{s.ID: true}
	var walk func(ids []string) string
	walk = func(ids []string) string {
		for _, id := range ids {
			d, ok := f.services[id]
			if !ok || seen[id] {
				continue
			}
			seen[id] = true
			if deeper := walk(d.Def.DependsOn); deeper != "" {
				return deeper
			}
			if d.Status == StatusDown {
				return id
			}
		}
		return ""
	}
	return walk(s.Def.DependsOn)
}

// reviewSuppressed looks again at every suppressed incident after a change
// that may end its wait (a service came up, was paused, resumed, deleted or
// redefined): one with no dependency down any more is released, its down
// actions owed at at; one that now waits for another dependency says so.
// Services are taken in id order, so every replica numbers the events alike.
func (f *FSM) reviewSuppressed(at int64) {
	if len(f.suppressed) == 0 {
		return
	}
	for _, id := range slices.Sorted(maps.Keys(f.suppressed)) {
		s := f.services[id]
		if s.Status != StatusDown {
			continue // paused: reviewed again when it resumes
		}
		cur := s.Current()
		inc := *cur
		switch by := f.blockedBy(s); by {
		case inc.SuppressedBy:
			continue
		case "":
			inc.Released, inc.Notified = at, at
			inc.Actions = appendRuns(slices.Clone(inc.Actions), s.Def.Actions, EventDown, 0, at)
			f.replaceCurrent(s, inc)
			f.record(s, Record{At: at, Event: EventDown, Incident: inc.ID})
		default:
			inc.SuppressedBy = by
			f.replaceCurrent(s, inc)
			f.record(s, Record{At: at, Event: EventSuppressed, Incident: inc.ID, SuppressedBy: by})
		}
	}
}

// DependencyCycle returns a cycle through start in the graph that deps
// describes (the services each id depends on), as the ids along it with
// start at both ends, or nil when there is none.
func DependencyCycle(start string, deps func(id string) []string) []string {
	seen := map[string]bool{}
	var path []string
	var walk func(id string) bool
	walk = func(id string) bool {
		path = append(path, id)
		for _, d := range deps(id) {
			if d == start {
				path = append(path, d)
				return true
			}
			if !seen[d] {
				seen[d] = true
				if walk(d) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		return false
	}
	if walk(start) {
		return path
	}
	return nil
}

// CycleString writes a cycle as "a -> b -> a".
func CycleString(cycle []string) string { return strings.Join(cycle, " -> ") }
