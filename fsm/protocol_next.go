//go:build watchdog_nextproto

package fsm

import "fmt"

// This file is the "next" protocol, built only with -tags watchdog_nextproto:
// one extra, harmless command kind, so that a test can run a cluster of
// mixed builds and upgrade it one node at a time. It adds its kind as a
// real new kind is added (see the recipe in kinds.go), except that its row
// goes to the table through nextKinds rather than into commandKinds.

// ProtocolVersion is the protocol this build speaks: the release's kinds
// and formats, and Note, one protocol above the release.
const ProtocolVersion = releaseProtocol + 1

// KindNote is a Note. It is deliberately not Ignorable: a node that does not
// know it must never be handed one, which is what the leader's protocol gate
// ensures.
const KindNote Kind = 12

// EventNote is a note an operator attached to a service's history.
const EventNote Event = "note"

// Note attaches an operator's note to a service's history.
type Note struct {
	At      int64  `json:"at"`
	Service string `json:"service"`
	Text    string `json:"text"`
}

// Kind implements Command.
func (Note) Kind() Kind { return KindNote }

// nextKinds are the rows this build adds to the table of kinds.
func nextKinds() kindTable {
	return kindTable{row("note", ProtocolVersion, jsonCodec[Note]{})}
}

func (n Note) applyTo(f *FSM, _ uint64) any {
	s, known := f.services[n.Service]
	if !known {
		return fmt.Errorf("%w %q", ErrUnknownService, n.Service)
	}
	text := n.Text
	if len(text) > MaxPingNote {
		text = text[:MaxPingNote]
	}
	f.record(s, Record{At: n.At, Event: EventNote, Note: text})
	return nil
}
