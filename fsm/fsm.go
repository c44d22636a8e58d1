package fsm

import (
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ErrUnknownService is returned (as an Apply response) by commands about a
// service the cluster has never heard of, as `no service "ID"`: the words
// every route and the CLI use for it, whichever part found it missing.
var ErrUnknownService = errors.New("no service")

// ErrDefinedByConfig is returned (as an Apply response) by a Define or
// Delete of a service the config file defines: the file wins.
var ErrDefinedByConfig = errors.New("fsm: service is defined in the config file")

// FSM is the watchdog's state machine. Apply is deterministic: it reads no
// clock and does no I/O, because every node replays the same log through it.
// Readers take copies under the read lock.
type FSM struct {
	mu       sync.RWMutex
	defaults *Definition
	// services are mutated in place under the write lock; readers get
	// copies. Only the Incidents slices are shared, and those are
	// copied on write.
	services  map[string]*Service
	deadlines deadlines
	// owing holds the ids of services with pending actions, so the leader
	// finds what it owes without scanning every service.
	owing map[string]struct{}
	// timed holds the ids of services that may owe a decision only time
	// brings (a repeat, or the end of flapping), so the leader finds them
	// without scanning every service.
	timed map[string]struct{}
	// windows holds the ids of paused services with a window end, so the
	// leader finds the windows that ended without scanning (window.go).
	windows map[string]struct{}
	// suppressed holds the ids of services whose open incident waits for
	// a dependency (depends.go).
	suppressed map[string]struct{}
	// events is each service's recent history, kept apart from the
	// service records so that a service without events costs nothing.
	// Slices are only ever appended to (see appendRecord), so copies
	// handed to readers and snapshots stay valid.
	events   map[string][]Record
	historyN int    // events kept per service; 0 means DefaultHistoryPerService
	seq      uint64 // the Seq of the latest event
	// config describes the committed configuration (config.go).
	config ConfigInfo
	// pendingCh wakes the leader's watcher when actions become pending.
	pendingCh chan struct{}
	// kinds is the table of command kinds (kinds.go), built once here
	// because Apply reads it for every entry.
	kinds kindTable
}

var _ raft.FSM = (*FSM)(nil)

// New returns an empty state machine.
func New() *FSM {
	return &FSM{
		defaults:   DefaultDefinition(),
		services:   make(map[string]*Service),
		owing:      make(map[string]struct{}),
		timed:      make(map[string]struct{}),
		suppressed: make(map[string]struct{}),
		events:     make(map[string][]Record),
		windows:    make(map[string]struct{}),
		pendingCh:  make(chan struct{}, 1),
		kinds:      commandKinds(),
	}
}

// PendingSignal receives a value after actions became pending. It is a hint:
// the watcher also looks on every tick.
func (f *FSM) PendingSignal() <-chan struct{} { return f.pendingCh }

// Apply implements raft.FSM. It panics on an entry it cannot decode, because
// skipping it would make this node diverge from the others silently.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand || len(l.Data) == 0 {
		return nil
	}
	cmd, err := f.kinds.decode(l.Data)
	if errors.Is(err, ErrUnknownKind) && Kind(l.Data[0])&Ignorable != 0 {
		return nil
	}
	if err != nil {
		panic(fmt.Sprintf("fsm: entry %d: %v", l.Index, err))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return cmd.applyTo(f, l.Index)
}

// Recoveries is the response to a Heartbeat (or a success Ping) that
// brought services back up: what the leader that proposed it logs. It is
// never replicated; every replica computes the same.
type Recoveries []Recovery

// Recovery is one service that a heartbeat brought back up.
type Recovery struct {
	Service  string
	Incident string        // the incident it resolved, "" if none was open
	DownFor  time.Duration // since the incident opened (0 without one)
	Flapping bool          // up again while flapping: the incident stays open
}

func (r Recoveries) orNil() any {
	if len(r) == 0 {
		return nil
	}
	return r
}

// applyHeartbeat marks the services up and seen at hb.At, adding those it
// does not know. The ids may be slices of the whole entry (heartbeatCodec):
// what is kept past the entry, a new service's id, is a clone of its own.
func (f *FSM) applyHeartbeat(hb Heartbeat) (up Recoveries) {
	for _, id := range hb.IDs {
		s, ok := f.services[id]
		if !ok {
			f.add(&Service{ID: strings.Clone(id), Def: f.defaults, Status: StatusUp, LastSeen: hb.At})
			continue
		}
		// Timestamps only move forward: a retried or reordered heartbeat
		// must not make a service look older than it is.
		s.LastSeen = max(s.LastSeen, hb.At)
		s.New, s.Started = false, 0
		if s.Status == StatusDown {
			s.Status = StatusUp
			r := Recovery{Service: s.ID}
			if cur := s.Current(); cur != nil && cur.Resolved == 0 {
				r.Incident, r.DownFor, r.Flapping = cur.ID, time.Duration(hb.At-cur.Opened), cur.Flapping
			}
			up = append(up, r)
			f.cameUp(s, hb.At)
		}
		f.watch(s)
	}
	if len(up) > 0 {
		f.reviewSuppressed(hb.At)
	}
	return up
}

// add stores a new service and starts watching it if it is up.
func (f *FSM) add(s *Service) {
	s.heapIdx = -1
	f.services[s.ID] = s
	f.watch(s)
}

// cameUp handles a heartbeat from a service that was down: it resolves the
// open incident and owes its recovery actions, unless the service is
// flapping, when the incident stays open and only the change is noted.
func (f *FSM) cameUp(s *Service, at int64) {
	cur := s.Current()
	switch {
	case cur == nil || cur.Resolved != 0:
		f.record(s, Record{At: at, Event: EventRecovered})
	case cur.Flapping:
		inc := *cur
		inc.Changed = at
		f.replaceCurrent(s, inc)
		f.record(s, Record{At: at, Event: EventUp, Incident: inc.ID})
	default:
		inc := *cur
		inc.Resolved = at
		if !inc.Suppressed() {
			// A recovery is told only where the down was.
			inc.Actions = appendRuns(slices.Clone(inc.Actions), s.Def.OnRecovered, EventRecovered, 0, at)
		}
		f.replaceCurrent(s, inc)
		f.record(s, Record{At: at, Event: EventRecovered, Incident: inc.ID})
	}
}

func appendRuns(runs []ActionRun, actions []string, ev Event, repeat int, at int64) []ActionRun {
	for _, a := range actions {
		runs = append(runs, ActionRun{Action: a, Event: ev, Repeat: repeat, Owed: at, State: ActionPending})
	}
	return runs
}

// replaceCurrent swaps the latest incident for inc, copying the slice because
// snapshots may hold the old one.
func (f *FSM) replaceCurrent(s *Service, inc Incident) {
	incs := slices.Clone(s.Incidents)
	incs[len(incs)-1] = inc
	s.Incidents = incs
	f.track(s)
}

// track keeps the owing and timed indexes in step with the service's
// status, definition and incidents.
func (f *FSM) track(s *Service) {
	f.trackWindow(s)
	if cur := s.Current(); cur != nil && cur.Resolved == 0 && cur.Suppressed() {
		f.suppressed[s.ID] = struct{}{}
	} else {
		delete(f.suppressed, s.ID)
	}
	if waits(s) {
		f.timed[s.ID] = struct{}{}
	} else {
		delete(f.timed, s.ID)
	}
	if owes(s) {
		if _, had := f.owing[s.ID]; !had {
			f.owing[s.ID] = struct{}{}
		}
		select {
		case f.pendingCh <- struct{}{}:
		default:
		}
		return
	}
	delete(f.owing, s.ID)
}

func owes(s *Service) bool {
	for _, inc := range s.Incidents {
		for _, r := range inc.Actions {
			if r.State == ActionPending {
				return true
			}
		}
	}
	return false
}

// applyConfigure makes the file's definitions the services'. The file wins
// over the API: a service it defines takes the file's definition whatever
// it had. A service it no longer defines goes back to the defaults, unless
// it was defined through the API, which it keeps.
func (f *FSM) applyConfigure(c Configure) {
	def := c.Defaults
	def.compile()
	f.defaults = &def
	f.noteConfig(c)
	f.setHistoryN(c.HistoryPerService)
	for id, s := range f.services {
		if d, ok := c.Services[id]; ok {
			d.compile()
			s.Def, s.Source = &d, SourceConfig
		} else if s.Source != SourceAPI {
			s.Def, s.Source = f.defaults, SourceHeartbeat
		}
		f.track(s)
	}
	// Timeouts may have changed for any number of services: reorder once.
	for _, s := range f.deadlines {
		s.due = s.computeDue()
	}
	heap.Init(&f.deadlines)
	for id, d := range c.Services {
		if _, ok := f.services[id]; !ok {
			d.compile()
			// Watched from the moment the cluster learns of it: a configured
			// service that never beats is an incident, not a silent gap.
			f.add(&Service{ID: id, Def: &d, Source: SourceConfig, Status: StatusUp, LastSeen: c.At, New: true})
		}
	}
	f.reviewSuppressed(c.At) // dependencies may have changed
}

// Opened is the response to an Incidents command: the ids of the incidents
// it opened, "" where the open did not take effect.
type Opened []string

func (f *FSM) applyIncidents(c Incidents, index uint64) Opened {
	opened := make(Opened, len(c.Opens))
	going := make([]*Service, len(c.Opens))
	for k, o := range c.Opens {
		if s, ok := f.services[o.Service]; ok && s.Status == StatusUp && s.LastSeen == o.LastSeen {
			going[k] = s
		}
	}
	// Services that go down together are all down before any incident
	// opens: one whose dependency is among them is suppressed, whichever
	// order the leader listed them in.
	for _, s := range going {
		if s != nil {
			s.Status = StatusDown
		}
	}
	for k, s := range going {
		if s != nil {
			opened[k] = f.goDown(s, c.At, strconv.FormatUint(index, 10)+"-"+strconv.Itoa(k), f.timeoutCause(s))
		}
	}
	return opened
}

// goDown marks an up service down at at for the reason why: it opens
// incident id, or, while the service flaps, goes on with the open one. It
// returns the incident's id.
func (f *FSM) goDown(s *Service, at int64, id string, why cause) string {
	s.Status, s.New = StatusDown, false
	f.watch(s)
	if s.Flapping() {
		// Silent again while flapping: the incident stays the same, and
		// says why it went down this time.
		inc := *s.Current()
		inc.Changed = at
		inc.Reason, inc.ExitStatus, inc.Note = why.reason, why.exit, why.note
		f.replaceCurrent(s, inc)
		f.record(s, Record{At: at, Event: EventDown, Incident: inc.ID})
		return inc.ID
	}
	inc := Incident{ID: id, Opened: at, LastSeen: s.LastSeen, Notified: at,
		Reason: why.reason, ExitStatus: why.exit, Note: why.note}
	ev := EventDown
	switch by := f.blockedBy(s); {
	case by != "":
		// Its actions wait for the dependency (depends.go).
		inc.SuppressedBy = by
	case flaps(s, at):
		// One notification says so; the rest wait until it is stable.
		inc.Flapping, inc.Changed, ev = true, at, EventFlapping
	}
	if !inc.Suppressed() {
		inc.Actions = appendRuns(nil, s.Def.Actions, ev, 0, at)
	}
	s.Incidents = appendIncident(s.Incidents, inc)
	f.track(s)
	f.record(s, Record{At: at, Event: EventDown, Incident: inc.ID})
	switch {
	case inc.Flapping:
		f.record(s, Record{At: at, Event: EventFlapping, Incident: inc.ID})
	case inc.Suppressed():
		f.record(s, Record{At: at, Event: EventSuppressed, Incident: inc.ID, SuppressedBy: inc.SuppressedBy})
	}
	return inc.ID
}

// appendIncident adds inc to a copy of the history, dropping the oldest
// finished incidents beyond maxIncidents.
func appendIncident(hist []Incident, inc Incident) []Incident {
	out := make([]Incident, 0, min(len(hist)+1, maxIncidents+1))
	drop := len(hist) + 1 - maxIncidents
	for _, old := range hist {
		if drop > 0 && !hasPending(old) {
			drop--
			continue
		}
		out = append(out, old)
	}
	return append(out, inc)
}

func hasPending(inc Incident) bool {
	return slices.ContainsFunc(inc.Actions, func(r ActionRun) bool { return r.State == ActionPending })
}

func (f *FSM) applyActionResult(c ActionResult) error {
	s, ok := f.services[c.Service]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownService, c.Service)
	}
	i := slices.IndexFunc(s.Incidents, func(inc Incident) bool { return inc.ID == c.Incident })
	if i < 0 {
		return nil // trimmed from history: nothing left to record
	}
	runs := s.Incidents[i].Actions
	j := slices.IndexFunc(runs, func(r ActionRun) bool {
		return r.Action == c.Action && r.Event == c.Event && r.Repeat == c.Repeat && r.State == ActionPending
	})
	if j < 0 {
		return nil // already recorded, by this leader or an earlier one
	}
	runs = slices.Clone(runs)
	runs[j].State, runs[j].Attempts, runs[j].Error, runs[j].Finished = c.State, c.Attempts, c.Error, c.At
	incs := slices.Clone(s.Incidents)
	incs[i].Actions = runs
	s.Incidents = incs
	f.track(s)
	f.record(s, Record{At: c.At, Event: EventDelivery, Incident: c.Incident, Action: c.Action,
		For: c.Event, Repeat: c.Repeat, State: c.State, Attempts: c.Attempts, Error: c.Error})
	return nil
}

func (f *FSM) applyPause(c Pause) error {
	s, ok := f.services[c.Service]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownService, c.Service)
	}
	// A plain pause holds until resumed: it lifts a window's end.
	if c.Paused {
		f.pause(s, c.At, 0)
	} else {
		f.resume(s, c.At, 0)
	}
	return nil
}
