package fsm

import (
	"cmp"
	"slices"
)

// DefaultHistoryPerService is how many events each service keeps when the
// configuration does not say.
const DefaultHistoryPerService = 100

// Record is one event in a service's history: a change of state, an
// incident, a repeat, a delivery attempt or outcome. Only changes are
// recorded: a heartbeat that changes nothing is not an event.
type Record struct {
	Seq      uint64      `json:"seq"` // increases by one with every event, across services
	At       int64       `json:"at"`  // Unix ns, stamped by the proposing leader
	Event    Event       `json:"event"`
	Incident string      `json:"incident,omitempty"`
	Action   string      `json:"action,omitempty"`   // attempt, delivery
	For      Event       `json:"for,omitempty"`      // attempt, delivery: the event delivered
	Repeat   int         `json:"repeat,omitempty"`   // repeat; attempt, delivery of a repeat
	State    ActionState `json:"state,omitempty"`    // delivery
	Attempts int         `json:"attempts,omitempty"` // attempt: its number; delivery: how many
	Error    string      `json:"error,omitempty"`
}

// ServiceRecord is a Record with the service it belongs to.
type ServiceRecord struct {
	Service string
	Record
}

func (f *FSM) limit() int {
	if f.historyN > 0 {
		return f.historyN
	}
	return DefaultHistoryPerService
}

// record appends an event to the service's history, dropping the oldest
// beyond the limit.
func (f *FSM) record(s *Service, r Record) {
	f.seq++
	r.Seq = f.seq
	f.events[s.ID] = appendRecord(f.events[s.ID], r, f.limit())
}

// appendRecord keeps the last n records. It appends in place and drops the
// oldest by reslicing, never writing below the current length: readers and
// snapshots that hold an earlier slice of the same array read only below
// theirs, so they need no copy, and each event costs amortised O(1).
func appendRecord(h []Record, r Record, n int) []Record {
	if len(h) >= n {
		h = h[len(h)-n+1:]
	}
	if len(h) == cap(h) {
		// Doubling keeps a short history small; a full one gets room for
		// n more, so dropping the oldest costs a copy only every n events.
		grown := make([]Record, len(h), min(max(2*len(h), 4), 2*n))
		copy(grown, h)
		h = grown
	}
	return append(h, r)
}

// setHistoryN applies a new limit, trimming every history now so that
// every node holds the same events whenever it was restored.
func (f *FSM) setHistoryN(n int) {
	if n == f.historyN {
		return
	}
	f.historyN = n
	limit := f.limit()
	for id, h := range f.events {
		if len(h) > limit {
			f.events[id] = h[len(h)-limit:]
		}
	}
}

func (f *FSM) applyAttempt(c Attempt) {
	s, ok := f.services[c.Service]
	if !ok {
		return
	}
	f.record(s, Record{At: c.At, Event: EventAttempt, Incident: c.Incident, Action: c.Action,
		For: c.Event, Repeat: c.Repeat, Attempts: c.Attempt, Error: c.Error})
}

// Events returns a service's history from the oldest event kept, limited to
// events at or after since (Unix ns; 0 for all). ok is false for an
// unknown service.
func (f *FSM) Events(id string, since int64) (out []Record, ok bool) {
	f.mu.RLock()
	_, ok = f.services[id]
	h := f.events[id]
	f.mu.RUnlock()
	i := slices.IndexFunc(h, func(r Record) bool { return r.At >= since })
	if i < 0 {
		return nil, ok
	}
	return slices.Clone(h[i:]), ok
}

// AllEvents returns up to limit events of every service at or after since
// (Unix ns) with a Seq above after, in Seq order (the order they were
// committed in), and whether more matched. Only the histories' headers are
// copied under the lock; the scan runs outside it, so Apply is not held up.
func (f *FSM) AllEvents(since int64, after uint64, limit int) (out []ServiceRecord, more bool) {
	type hist struct {
		id string
		h  []Record
	}
	f.mu.RLock()
	all := make([]hist, 0, len(f.events))
	for id, h := range f.events {
		all = append(all, hist{id, h})
	}
	f.mu.RUnlock()
	for _, x := range all {
		// Each history is in Seq order, so its matches are a suffix.
		i, _ := slices.BinarySearchFunc(x.h, after+1, func(r Record, seq uint64) int { return cmp.Compare(r.Seq, seq) })
		for _, r := range x.h[i:] {
			if r.At >= since {
				out = append(out, ServiceRecord{Service: x.id, Record: r})
			}
		}
	}
	slices.SortFunc(out, func(a, b ServiceRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	if limit > 0 && len(out) > limit {
		return out[:limit], true
	}
	return out, false
}
