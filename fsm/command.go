package fsm

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Encoding. Every log entry starts with two bytes, the command's Kind and its
// version, so a node can dispatch cheaply and refuse what it does not know.
// Heartbeats, by far the most frequent command, use a compact binary body
// (varints and length-prefixed ids: about 2 bytes plus the id per heartbeat,
// and no reflection on the hot path). The rare commands (configuration,
// incidents, action results) use JSON: readable when inspecting a log and
// tolerant of fields added by newer versions.

// Kind identifies a command in the Raft log.
type Kind uint8

// The command kinds. Numbers are part of the log format: never reuse one.
// Each has its row in the table of kinds (kinds.go).
const (
	KindHeartbeat    Kind = 1
	KindConfigure    Kind = 2
	KindIncidents    Kind = 3
	KindActionResult Kind = 4
	KindPause        Kind = 5
	KindRepeats      Kind = 6
	KindStable       Kind = 7
	KindDefine       Kind = 8
	KindDelete       Kind = 9
	// KindAttempt only adds to a service's history, so a node that does
	// not know it yet may skip it.
	KindAttempt = Ignorable | 10
	// KindPing is a healthchecks-style signal (start, fail, exit status,
	// or a success that carries a note or run id).
	KindPing Kind = 11

	// Ignorable marks a kind that nodes which do not know it may skip
	// instead of stopping: for commands that only add information.
	Ignorable Kind = 0x80
)

// commandVersion is the version every kind is written at today.
const commandVersion = 1

// ErrCorrupt is returned when a log entry or snapshot cannot be decoded.
var ErrCorrupt = errors.New("fsm: corrupt data")

// Command is a change to the replicated state, proposed by the leader.
type Command interface {
	Kind() Kind
}

// Heartbeat records that services were heard from at At (Unix ns), stamped
// once by the leader when it proposes the entry, so every node applies the
// same time.
type Heartbeat struct {
	At  int64
	IDs []string
}

// Configure commits the operator's configuration: the definition of services
// first seen through a heartbeat, and the services defined by name.
type Configure struct {
	At       int64                 `json:"at"`
	Defaults Definition            `json:"defaults"`
	Services map[string]Definition `json:"services,omitempty"`
	// HistoryPerService bounds each service's event history; 0 means
	// DefaultHistoryPerService.
	HistoryPerService int `json:"history_per_service,omitempty"`
	// ActionsHash is the hash of the action definitions of the file this
	// configuration came from (see ConfigInfo); it changes nothing here.
	ActionsHash string `json:"actions_hash,omitempty"`
}

// Incidents opens incidents for services the leader found overdue. Each open
// is conditional: it only takes effect if the service is still up with the
// LastSeen the leader saw, so a heartbeat committed meanwhile wins.
type Incidents struct {
	At    int64  `json:"at"`
	Opens []Open `json:"opens"`
}

// Open is one service the leader found overdue, with the heartbeat it saw last.
type Open struct {
	Service  string `json:"service"`
	LastSeen int64  `json:"last_seen"`
}

// ActionResult records the outcome of one pending action of an incident.
type ActionResult struct {
	At       int64       `json:"at"`
	Service  string      `json:"service"`
	Incident string      `json:"incident"`
	Action   string      `json:"action"`
	Event    Event       `json:"event"`
	Repeat   int         `json:"repeat,omitempty"`
	State    ActionState `json:"state"`
	Attempts int         `json:"attempts"`
	Error    string      `json:"error,omitempty"`
}

// Pause stops (Paused true) or resumes watching a service.
type Pause struct {
	At      int64  `json:"at"`
	Service string `json:"service"`
	Paused  bool   `json:"paused"`
}

// Repeats owes the down actions again for services still down, as their
// restart policy says. Each item only takes effect if the incident is still
// the open one, it has had exactly N-1 repeats, and At is past the repeat's
// due time: a retried or late proposal changes nothing.
type Repeats struct {
	At    int64       `json:"at"`
	Items []RepeatDue `json:"items"`
}

// RepeatDue is the N-th repeat of an incident's down actions.
type RepeatDue struct {
	Service  string `json:"service"`
	Incident string `json:"incident"`
	N        int    `json:"n"`
}

// Stable ends flapping for services whose state has not changed for their
// flap window. Each item only takes effect if the incident's last change is
// still the one the leader saw, so a change committed meanwhile wins.
type Stable struct {
	At    int64       `json:"at"`
	Items []StableDue `json:"items"`
}

// StableDue is a flapping incident the leader found stable.
type StableDue struct {
	Service  string `json:"service"`
	Incident string `json:"incident"`
	Changed  int64  `json:"changed"`
}

// Define creates a service, or changes its definition, through the API. It
// is refused for a service the config file defines (the file wins).
type Define struct {
	At      int64      `json:"at"`
	Service string     `json:"service"`
	Def     Definition `json:"def"`
}

// Delete forgets a service and its history; refused for a service the
// config file defines.
type Delete struct {
	At      int64  `json:"at"`
	Service string `json:"service"`
}

// Attempt records a failed delivery attempt that will be retried, for the
// service's history; the outcome itself is an ActionResult.
type Attempt struct {
	At       int64  `json:"at"`
	Service  string `json:"service"`
	Incident string `json:"incident"`
	Action   string `json:"action"`
	Event    Event  `json:"event"`
	Repeat   int    `json:"repeat,omitempty"`
	Attempt  int    `json:"attempt"`
	Error    string `json:"error"`
}

// Kind implements Command.
func (Heartbeat) Kind() Kind { return KindHeartbeat }

// Kind implements Command.
func (Configure) Kind() Kind { return KindConfigure }

// Kind implements Command.
func (Incidents) Kind() Kind { return KindIncidents }

// Kind implements Command.
func (ActionResult) Kind() Kind { return KindActionResult }

// Kind implements Command.
func (Pause) Kind() Kind { return KindPause }

// Kind implements Command.
func (Repeats) Kind() Kind { return KindRepeats }

// Kind implements Command.
func (Stable) Kind() Kind { return KindStable }

// Kind implements Command.
func (Define) Kind() Kind { return KindDefine }

// Kind implements Command.
func (Delete) Kind() Kind { return KindDelete }

// Kind implements Command.
func (Attempt) Kind() Kind { return KindAttempt }

// Kind implements Command.
func (Ping) Kind() Kind { return KindPing }

// Encode turns a command into the bytes of a log entry.
func Encode(c Command) ([]byte, error) {
	out := []byte{byte(c.Kind()), formatVersion(c)}
	if hb, ok := c.(Heartbeat); ok {
		return appendHeartbeat(out, hb), nil
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("fsm: encode kind %d: %w", c.Kind(), err)
	}
	return append(out, body...), nil
}

func appendHeartbeat(out []byte, hb Heartbeat) []byte {
	out = binary.AppendVarint(out, hb.At)
	out = binary.AppendUvarint(out, uint64(len(hb.IDs)))
	for _, id := range hb.IDs {
		out = binary.AppendUvarint(out, uint64(len(id)))
		out = append(out, id...)
	}
	return out
}

// ErrUnknownKind is returned by Decode for a kind this build does not know.
var ErrUnknownKind = errors.New("fsm: unknown command kind")

// Decode parses a log entry. An unknown kind gives ErrUnknownKind; the caller
// decides whether it may be skipped (see Ignorable).
func Decode(b []byte) (Command, error) {
	return commandKinds().decode(b)
}

// kindCodec reads the entries of one kind, as its Go type: see the table
// of kinds. Its values have no size, so the table costs one allocation.
type kindCodec interface {
	kind() Kind
	decode(body []byte) (command, error)
	zero() command // an empty command of the kind
}

// jsonCodec reads a kind written in JSON, as C.
type jsonCodec[C command] struct{}

func (jsonCodec[C]) kind() Kind {
	var c C
	return c.Kind()
}

func (jsonCodec[C]) zero() command {
	var c C
	return c
}

func (jsonCodec[C]) decode(body []byte) (command, error) {
	var c C
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("%w: kind %d: %w", ErrCorrupt, c.Kind(), err)
	}
	return c, nil
}

// heartbeatCodec reads heartbeats, written in binary (appendHeartbeat).
// Their ids are slices of one string, the entry's body: one allocation per
// entry rather than one per id. Whoever keeps an id longer than the entry
// clones it (applyHeartbeat), lest it hold the whole body.
type heartbeatCodec struct{}

func (heartbeatCodec) kind() Kind { return KindHeartbeat }

func (heartbeatCodec) zero() command { return Heartbeat{} }

func (heartbeatCodec) decode(b []byte) (command, error) {
	at, n := binary.Varint(b)
	if n <= 0 {
		return nil, fmt.Errorf("%w: heartbeat time", ErrCorrupt)
	}
	b = b[n:]
	count, n := binary.Uvarint(b)
	// Every id takes at least two bytes, which bounds a hostile count.
	if n <= 0 || count > uint64(len(b)) {
		return nil, fmt.Errorf("%w: heartbeat count", ErrCorrupt)
	}
	b = b[n:]
	hb := Heartbeat{At: at, IDs: make([]string, 0, count)}
	body := string(b) // the ids are slices of it
	for range count {
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: heartbeat id", ErrCorrupt)
		}
		start := len(body) - len(b) + n
		hb.IDs = append(hb.IDs, body[start:start+int(size)])
		b = b[n+int(size):]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(b))
	}
	return hb, nil
}
