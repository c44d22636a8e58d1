package fsm

import "strconv"

// Signals a Ping carries, as healthchecks.io's ping API names them.
const (
	SignalStart   = "start"
	SignalSuccess = "success"
	SignalFail    = "fail"
)

// MaxPingNote bounds the note a ping keeps, as healthchecks.io's default
// PING_BODY_LIMIT does: the API refuses more, and Apply cuts anything
// longer so that no entry can grow the history beyond it.
const MaxPingNote = 10000

// Ping is a healthchecks.io-style signal about one service. A plain success
// without note, run id or exit status is a Heartbeat instead (group commit);
// a Ping is for what must be recorded or acted on at once.
type Ping struct {
	At         int64  `json:"at"`
	Service    string `json:"service"`
	Signal     string `json:"signal"`
	ExitStatus int    `json:"exit_status,omitempty"`
	RunID      string `json:"rid,omitempty"`
	Note       string `json:"note,omitempty"`
}

// applyPing records the ping in the service's history, then:
//   - start: a sign of life (the timeout restarts, so a run that neither
//     succeeds nor fails nor starts again within it is an incident); for a
//     scheduled service, the start of a run that must end within its grace;
//   - success: a heartbeat;
//   - fail: the service goes down now, with incident "<index>-0".
//
// A paused service only records it. An unknown service is created, as a
// heartbeat would; the API proposes that only when asked to.
func (f *FSM) applyPing(p Ping, index uint64) Recoveries {
	ev, ok := map[string]Event{SignalStart: EventStart, SignalSuccess: EventSuccess, SignalFail: EventFail}[p.Signal]
	if !ok {
		return nil // written by a newer version, or garbage: changes nothing
	}
	s, known := f.services[p.Service]
	if !known {
		s = &Service{ID: p.Service, Def: f.defaults, Status: StatusUp, LastSeen: p.At}
		f.add(s)
	}
	note := p.Note
	if len(note) > MaxPingNote {
		note = note[:MaxPingNote]
	}
	f.record(s, Record{At: p.At, Event: ev, Note: note, RunID: p.RunID, ExitStatus: p.ExitStatus})
	if s.Status == StatusPaused {
		return nil
	}
	switch ev {
	case EventSuccess:
		wasDown := s.Status == StatusDown
		up := f.applyHeartbeat(Heartbeat{At: p.At, IDs: []string{p.Service}})
		if cur := s.Current(); wasDown && cur != nil && cur.Resolved == p.At && p.Note != "" {
			inc := *cur
			inc.RecoveryNote = incidentNote(p.Note)
			f.replaceCurrent(s, inc)
		}
		return up
	case EventStart:
		switch {
		case s.Def.scheduled():
			// A run must end within the grace; it is not a success.
			s.Started = p.At
			f.watch(s)
		case s.Status == StatusUp:
			s.LastSeen = max(s.LastSeen, p.At)
			f.watch(s)
		}
	case EventFail:
		s.LastSeen, s.Started = max(s.LastSeen, p.At), 0
		if s.Status == StatusUp {
			f.goDown(s, p.At, strconv.FormatUint(index, 10)+"-0", pingCause(p))
		}
	}
	return nil
}
