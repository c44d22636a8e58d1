package fsm

import (
	"container/heap"
	"fmt"
	"slices"
)

// applyDefine creates or changes a service defined through the API. A new
// service is watched from the moment it is defined, as a configured one is.
// Defining a service again as it already is changes nothing, so a retried
// request leaves no trace.
func (f *FSM) applyDefine(c Define) error {
	if err := c.Def.Check(); err != nil {
		return err
	}
	if slices.Contains(c.Def.DependsOn, c.Service) {
		return fmt.Errorf("%w: %q depends on itself", ErrBadDefinition, c.Service)
	}
	def := c.Def
	def.compile()
	s, ok := f.services[c.Service]
	switch {
	case !ok:
		s = &Service{ID: c.Service, Def: &def, Source: SourceAPI, Status: StatusUp, LastSeen: c.At, New: true}
		f.add(s)
	case s.Source == SourceConfig:
		return fmt.Errorf("%w: %q", ErrDefinedByConfig, c.Service)
	case s.Source == SourceAPI && s.Def.Equal(&def):
		return nil
	default:
		s.Def, s.Source = &def, SourceAPI
		f.watch(s) // the timeout or grace may have moved its deadline
	}
	f.track(s)
	f.record(s, Record{At: c.At, Event: EventDefined})
	f.reviewSuppressed(c.At) // its dependencies may have changed
	return nil
}

// applyDelete forgets a service: its record, its history, and any action
// still owed for it (a deleted service is nobody's concern any more). A
// heartbeat afterwards creates it again, on the defaults.
func (f *FSM) applyDelete(c Delete) error {
	s, ok := f.services[c.Service]
	switch {
	case !ok:
		return fmt.Errorf("%w %q", ErrUnknownService, c.Service)
	case s.Source == SourceConfig:
		return fmt.Errorf("%w: %q", ErrDefinedByConfig, c.Service)
	}
	if s.heapIdx >= 0 {
		heap.Remove(&f.deadlines, s.heapIdx)
	}
	delete(f.services, c.Service)
	delete(f.owing, c.Service)
	delete(f.timed, c.Service)
	delete(f.windows, c.Service)
	delete(f.events, c.Service)
	delete(f.suppressed, c.Service)
	f.reviewSuppressed(c.At) // a dependency gone is no longer down
	return nil
}

// Defaults returns the definition of services first seen through a
// heartbeat, as committed. It is shared: the caller must not change it.
func (f *FSM) Defaults() Definition {
	f.mu.RLock()
	defer f.mu.RUnlock()
	d := *f.defaults
	d.Actions, d.OnRecovered, d.Tags = slices.Clone(d.Actions), slices.Clone(d.OnRecovered), slices.Clone(d.Tags)
	return d
}
