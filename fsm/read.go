package fsm

import (
	"cmp"
	"slices"
	"time"
)

// Service returns a copy of one service's record.
func (f *FSM) Service(id string) (Service, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s, ok := f.services[id]
	if !ok {
		return Service{}, false
	}
	return s.copy(), true
}

// Services returns every service, sorted by id.
func (f *FSM) Services() []Service {
	f.mu.RLock()
	out := make([]Service, 0, len(f.services))
	for _, s := range f.services {
		out = append(out, s.copy())
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b Service) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Len returns the number of services.
func (f *FSM) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.services)
}

// Unknown returns those of ids that name no service, under one lock: the
// leader asks it of every batch of heartbeats when new ids are limited.
func (f *FSM) Unknown(ids []string) []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []string
	for _, id := range ids {
		if _, ok := f.services[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// Overdue lists the services that are up and past their deadline at now,
// given that heartbeats could be seen only since watchingSince. It also
// returns when to look again: no later than the earliest deadline still
// ahead (zero when nothing is watched), so the watcher wakes up in time.
func (f *FSM) Overdue(now, watchingSince time.Time) (due []Open, next time.Time) {
	f.mu.RLock()
	due, next = f.overdue(now, watchingSince)
	f.mu.RUnlock()
	slices.SortFunc(due, func(a, b Open) int { return cmp.Compare(a.Service, b.Service) })
	return due, next
}

// PendingActions lists the actions owed, by service, oldest incident first.
func (f *FSM) PendingActions() []PendingAction {
	f.mu.RLock()
	var out []PendingAction
	for id := range f.owing {
		s := f.services[id]
		for _, inc := range s.Incidents {
			for _, r := range inc.Actions {
				if r.State == ActionPending {
					out = append(out, PendingAction{Service: id, Incident: inc.ID, LastSeen: inc.LastSeen, Run: r})
				}
			}
		}
	}
	f.mu.RUnlock()
	// Stable: within a service, runs stay in history order, oldest first.
	slices.SortStableFunc(out, func(a, b PendingAction) int { return cmp.Compare(a.Service, b.Service) })
	return out
}

// Configured reports whether the committed configuration already says what
// c says, so a new leader proposes its configuration only when it changed.
func (f *FSM) Configured(c Configure) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if !f.defaults.Equal(&c.Defaults) || f.historyN != c.HistoryPerService {
		return false
	}
	n := 0
	for _, s := range f.services {
		if s.Source != SourceConfig {
			continue
		}
		n++
		d, ok := c.Services[s.ID]
		if !ok || !s.Def.Equal(&d) {
			return false
		}
	}
	return n == len(c.Services)
}

// Latest is the latest time stamped into the state: a service's last
// heartbeat, or a change to its current incident. A new leader stamps after
// it, so what it commits orders after everything committed before it,
// whatever its own clock says.
func (f *FSM) Latest() time.Time {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var latest int64
	for _, s := range f.services {
		latest = max(latest, s.LastSeen)
		if cur := s.Current(); cur != nil {
			latest = max(latest, cur.Opened, cur.Resolved, cur.Changed, cur.Notified)
		}
	}
	return time.Unix(0, latest)
}
