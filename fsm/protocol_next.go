//go:build watchdog_nextproto

package fsm

import "fmt"

// This file is the "next" protocol, built only with -tags watchdog_nextproto:
// one extra, harmless command kind, so that a test can run a cluster of
// mixed builds and upgrade it one node at a time. It is how a real new kind
// is added: a number never used before, an entry in MinProtocol (here
// nextProtocol), its decoding and its application.

// ProtocolVersion is the protocol this build speaks: the release's kinds
// and formats, and Note, one protocol above the release.
const ProtocolVersion = max(WindowProtocol, ProtocolSchedules) + 1

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

func nextProtocol(k Kind) int {
	if k == KindNote {
		return ProtocolVersion
	}
	return 0
}

func decodeNext(k Kind, body []byte) (Command, bool, error) {
	if k != KindNote {
		return nil, false, nil
	}
	c, err := decodeJSON[Note](body)
	return c, true, err
}

// applyNext applies the kinds of this protocol; it runs under the write lock.
func (f *FSM) applyNext(cmd Command, _ uint64) (any, bool) {
	n, ok := cmd.(Note)
	if !ok {
		return nil, false
	}
	s, known := f.services[n.Service]
	if !known {
		return fmt.Errorf("%w %q", ErrUnknownService, n.Service), true
	}
	text := n.Text
	if len(text) > MaxPingNote {
		text = text[:MaxPingNote]
	}
	f.record(s, Record{At: n.At, Event: EventNote, Note: text})
	return nil, true
}
