package fsm

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Why a service went down, as an incident records it and notifications
// say it.
const (
	ReasonTimeout    = "timeout"     // no heartbeat within its timeout (and grace)
	ReasonFail       = "fail"        // a fail ping
	ReasonExitStatus = "exit_status" // a ping with a non-zero exit status
)

// MaxIncidentNote bounds the note an incident keeps (and notifications
// carry): enough for the line a job printed last, small enough that every
// incident of every service can hold one.
const MaxIncidentNote = 1000

// cause is why a service goes down, as goDown records it.
type cause struct {
	reason string
	exit   int
	note   string // cleaned with incidentNote
}

// The reason, exit status and note of an incident are derived by Apply from
// what earlier builds already committed (a Ping's signal, exit status and
// note; an Incidents entry for a timeout), so no command changed and no
// protocol version is needed. A node of an earlier build in a mixed cluster
// keeps incidents without them; nothing is decided on them, they are only
// told.

// timeoutCause is the cause of an incident opened by the watcher: the note
// is the one the service's last contact carried, if that was a ping (a
// start, or a success with a note) and its record is still in the history.
func (f *FSM) timeoutCause(s *Service) cause {
	h := f.events[s.ID]
	for i := len(h) - 1; i >= 0 && h[i].At >= s.LastSeen; i-- {
		switch h[i].Event {
		case EventStart, EventSuccess, EventFail:
			return cause{reason: ReasonTimeout, note: incidentNote(h[i].Note)}
		}
	}
	return cause{reason: ReasonTimeout}
}

// pingCause is the cause of an incident a fail ping opened.
func pingCause(p Ping) cause {
	c := cause{reason: ReasonFail, note: incidentNote(p.Note)}
	if p.ExitStatus != 0 {
		c.reason, c.exit = ReasonExitStatus, p.ExitStatus
	}
	return c
}

// incidentNote makes a ping's note fit to be shown anywhere: one line of
// printable text (control and invisible formatting characters, such as
// bidi overrides, become spaces or go), valid UTF-8, at most
// MaxIncidentNote bytes, cut at a character boundary.
func incidentNote(note string) string {
	if note == "" {
		return ""
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(note, "\uFFFD") {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			r = ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			continue
		}
		if b.Len()+utf8.RuneLen(r) > MaxIncidentNote {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}
