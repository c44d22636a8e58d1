package fsm

import (
	"cmp"
	"container/heap"
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
	// Ping events (start, fail, success): what the pinging client said.
	Note       string `json:"note,omitempty"`
	RunID      string `json:"rid,omitempty"`
	ExitStatus int    `json:"exit_status,omitempty"` // 0 is success, shown by the event
	// Until is a maintenance window's end: of a paused event, when it
	// will end; of a resumed event, the end that resumed it.
	Until int64 `json:"until,omitempty"`
	// SuppressedBy is, on a suppressed event, the dependency it waits for.
	SuppressedBy string `json:"suppressed_by,omitempty"`
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
	return slices.Clone(fromTime(h, since)), ok
}

// fromTime returns the events of h stamped at or after since: the longest
// suffix that is, as leaders stamp events in order (a new leader's clock
// a little behind the old one's may hide an event right at the boundary).
func fromTime(h []Record, since int64) []Record {
	i := len(h)
	for i > 0 && h[i-1].At >= since {
		i--
	}
	return h[i:]
}

// AllEvents returns up to limit events of every service at or after since
// (Unix ns) with a Seq above after, in Seq order (the order they were
// committed in), and whether more match. Only the histories' headers are
// copied under the lock; the merge runs outside it, so Apply is not held
// up, and costs O(services + limit × log services) however long the
// histories are.
func (f *FSM) AllEvents(since int64, after uint64, limit int) (out []ServiceRecord, more bool) {
	f.mu.RLock()
	m := make(merge, 0, len(f.events))
	for id, h := range f.events {
		m = append(m, history{id, h})
	}
	f.mu.RUnlock()
	live := m[:0]
	for _, x := range m {
		// Each history is in Seq order, so its matches are a suffix.
		i, _ := slices.BinarySearchFunc(x.h, after+1, func(r Record, seq uint64) int { return cmp.Compare(r.Seq, seq) })
		if x.h = fromTime(x.h[i:], since); len(x.h) > 0 {
			live = append(live, x)
		}
	}
	m = live
	heap.Init(&m)
	for len(m) > 0 {
		if limit > 0 && len(out) == limit {
			return out, true
		}
		out = append(out, ServiceRecord{Service: m[0].id, Record: m[0].h[0]})
		if m[0].h = m[0].h[1:]; len(m[0].h) == 0 {
			heap.Pop(&m)
		} else {
			heap.Fix(&m, 0)
		}
	}
	return out, false
}

// history is what is left to merge of one service's events.
type history struct {
	id string
	h  []Record
}

// merge is a min-heap of histories by the Seq of their next event.
type merge []history

func (m merge) Len() int           { return len(m) }
func (m merge) Less(i, j int) bool { return m[i].h[0].Seq < m[j].h[0].Seq }
func (m merge) Swap(i, j int)      { m[i], m[j] = m[j], m[i] }
func (m *merge) Push(x any)        { *m = append(*m, x.(history)) }
func (m *merge) Pop() any {
	old := *m
	x := old[len(old)-1]
	*m = old[:len(old)-1]
	return x
}
