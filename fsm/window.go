package fsm

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Maintenance windows. A service paused until a time (Service.PausedUntil,
// on the leaders' timeline) is resumed by the leader when that time has
// come: its watcher finds it with WindowsDue and commits a WindowEnd. The
// end is in the replicated state, so a window outlives the leader that
// opened it, a restart and a restore. Windows came with protocol 2
// (WindowProtocol): in a cluster where some server still runs protocol 1,
// which would pause for good and never hear of the end, the leader refuses
// both kinds (cluster.ErrProtocolNotAgreed) and only the plain Pause of the
// first release is proposed.

// The kinds of protocol 2. Neither is Ignorable: a node that skipped one
// would hold another state. (Kinds 12 to 15 are left to the test build's
// Note and to other kinds in the making.)
const (
	KindWindow    Kind = 16
	KindWindowEnd Kind = 17
)

// MaxWindowServices bounds the services one Window pauses or resumes (an
// entry small enough not to hold up the heartbeats behind it): a
// tag on more is refused whole rather than paused in part.
const MaxWindowServices = 2000

// Window pauses (Paused) or resumes the Services at once, as the operator
// asked for one service or for every service with a tag. Until, when set
// on a pause, ends it: the leader resumes each service then. A pause
// without Until holds until resumed, as Pause does.
type Window struct {
	At       int64    `json:"at"`
	Services []string `json:"services"`
	Paused   bool     `json:"paused"`
	Until    int64    `json:"until,omitempty"`
}

// WindowEnd resumes services whose window has ended. Each item only takes
// effect if the service is still paused with that end and At is at or past
// it, so a window changed or lifted meanwhile, or a retried proposal, is
// left alone.
type WindowEnd struct {
	At    int64       `json:"at"`
	Items []WindowDue `json:"items"`
}

// WindowDue is a service whose window ends at Until.
type WindowDue struct {
	Service string `json:"service"`
	Until   int64  `json:"until"`
}

// Kind implements Command.
func (Window) Kind() Kind { return KindWindow }

// Kind implements Command.
func (WindowEnd) Kind() Kind { return KindWindowEnd }

// Windowed is the response to a Window: the ids of the services it
// changed, in the order given.
type Windowed []string

func (f *FSM) applyWindow(c Window) Windowed {
	var changed Windowed
	for _, id := range c.Services {
		s, ok := f.services[id]
		if !ok {
			continue // deleted since the leader listed it
		}
		var did bool
		if c.Paused {
			did = f.pause(s, c.At, c.Until)
		} else {
			did = f.resume(s, c.At, 0)
		}
		if did {
			changed = append(changed, id)
		}
	}
	return changed
}

func (f *FSM) applyWindowEnd(c WindowEnd) {
	for _, it := range c.Items {
		s, ok := f.services[it.Service]
		if !ok || s.Status != StatusPaused || s.PausedUntil != it.Until || c.At < it.Until {
			continue
		}
		f.resume(s, c.At, it.Until)
	}
}

// pause pauses s until until (0: until resumed), or moves the end of its
// window; it reports whether anything changed. The history says each
// change, with the window's end.
func (f *FSM) pause(s *Service, at, until int64) bool {
	if s.Status == StatusPaused && s.PausedUntil == until {
		return false
	}
	s.Status, s.PausedUntil = StatusPaused, until
	f.record(s, Record{At: at, Event: EventPaused, Until: until})
	f.watch(s)
	f.track(s)
	f.reviewSuppressed(at) // a dependency paused no longer counts as down
	return true
}

// resume watches a paused s again, at at; ended is the end of the window
// that ended, 0 when an operator resumed it. It reports whether s was
// paused. A service that was down with its incident open is down again;
// any other starts with a full timeout: the time spent paused is not
// silence.
func (f *FSM) resume(s *Service, at, ended int64) bool {
	if s.Status != StatusPaused {
		return false
	}
	s.PausedUntil = 0
	switch cur := s.Current(); {
	case cur != nil && cur.Resolved == 0 && !cur.Flapping:
		s.Status = StatusDown
		f.record(s, Record{At: at, Event: EventResumed, Incident: cur.ID, Until: ended})
	default:
		// A flapping service starts up, and its episode goes on.
		s.Status, s.LastSeen = StatusUp, max(s.LastSeen, at)
		f.record(s, Record{At: at, Event: EventResumed, Until: ended})
	}
	f.watch(s)
	f.track(s)
	f.reviewSuppressed(at) // s may be a dependency, or a suppressed service back
	return true
}

// trackWindow keeps the index of windows in step with s.
func (f *FSM) trackWindow(s *Service) {
	if s.Status == StatusPaused && s.PausedUntil != 0 {
		f.windows[s.ID] = struct{}{}
	} else {
		delete(f.windows, s.ID)
	}
}

// WindowsDue lists the services whose window has ended at now, and when
// the next one ends (zero when none is open), so the watcher wakes up in
// time. It costs O(open windows), not O(services).
func (f *FSM) WindowsDue(now time.Time) (due []WindowDue, next time.Time) {
	nowNS := now.UnixNano()
	f.mu.RLock()
	for id := range f.windows {
		until := f.services[id].PausedUntil
		if until > nowNS {
			next = earliest(next, time.Unix(0, until))
			continue
		}
		due = append(due, WindowDue{Service: id, Until: until})
	}
	f.mu.RUnlock()
	slices.SortFunc(due, func(a, b WindowDue) int { return cmp.Compare(a.Service, b.Service) })
	return due, next
}

// checkWindow is what a restored record must hold: an end only on a
// paused service.
func checkWindow(s *Service) error {
	if s.PausedUntil < 0 || (s.PausedUntil != 0 && s.Status != StatusPaused) {
		return fmt.Errorf("%w: service %q has a window end but is %s", ErrCorrupt, s.ID, s.Status)
	}
	return nil
}
