package fsm

import "fmt"

// The table of command kinds, after Consul's message types (agent/structs,
// with their ignorable bit, and its FSM's command table): one row per kind
// this build knows, read by Decode and Apply, by the leader's protocol gate
// (MinProtocol) and by the metrics (KindName); nothing else lists kinds. It
// is built by a function rather than kept in a variable, so the package
// holds no state; each FSM keeps its own copy for Apply.
//
// To add a kind:
//
//  1. Give it a Kind constant with a number never used before (command.go,
//     or the file of its feature; 12 to 15 are reserved, see window.go),
//     or'ed with Ignorable only if a node that does not know it may skip
//     it, because it only adds information.
//  2. Define its command type with a Kind method, and an applyTo method
//     (below) that changes the state deterministically: no clock, no I/O.
//  3. Add its row to commandKinds: row(name, protocol, jsonCodec[T]{}).
//     The name labels watchdog_raft_apply_duration_seconds and never
//     changes once released (README lists the names). A kind not written
//     in JSON has a codec of its own, and a case in Encode, as heartbeats.
//  4. Its protocol is the release's: if the release has none yet, name the
//     next number in protocol.go and raise releaseProtocol to it;
//     ProtocolVersion, and the watchdog_nextproto test build's one above
//     it, follow.
//
// kinds_test.go fails when a Kind constant has no row, or a row does not
// round-trip, apply, or fit ProtocolVersion. The watchdog_nextproto build
// (protocol_next.go) adds its kind the same way, its row coming from
// nextKinds.

// command is a Command this package can apply: every row's Go type is one,
// so a kind without its application does not compile.
type command interface {
	Command
	// applyTo changes f's state as the entry at index says, under f's
	// write lock, and returns the response that raft hands the proposer.
	applyTo(f *FSM, index uint64) any
}

// kindRow is one row of the table.
type kindRow struct {
	kind     Kind      // its number, from its Go type's Kind method
	name     string    // its label in metrics: lower case, never changed
	protocol int       // the protocol that introduced it (MinProtocol)
	codec    kindCodec // how its entries are read, as which Go type
	// newest is the newest format version of its entries this build
	// reads; the oldest is commandVersion.
	newest byte
}

// kindTable is the command kinds of a build.
type kindTable []kindRow

// commandKinds is the table: every kind of the release, in the order of
// their numbers, then those of the watchdog_nextproto test build
// (nextKinds, nil in any other build).
func commandKinds() kindTable {
	return append(kindTable{
		row("heartbeat", BaseProtocol, heartbeatCodec{}),
		row("configure", BaseProtocol, jsonCodec[Configure]{}).readsUpTo(scheduleFormat),
		row("incidents", BaseProtocol, jsonCodec[Incidents]{}),
		row("action_result", BaseProtocol, jsonCodec[ActionResult]{}),
		row("pause", BaseProtocol, jsonCodec[Pause]{}),
		row("repeats", BaseProtocol, jsonCodec[Repeats]{}),
		row("stable", BaseProtocol, jsonCodec[Stable]{}),
		row("define", BaseProtocol, jsonCodec[Define]{}).readsUpTo(scheduleFormat),
		row("delete", BaseProtocol, jsonCodec[Delete]{}),
		row("attempt", BaseProtocol, jsonCodec[Attempt]{}),
		row("ping", BaseProtocol, jsonCodec[Ping]{}),
		row("window", WindowProtocol, jsonCodec[Window]{}),
		row("window_end", WindowProtocol, jsonCodec[WindowEnd]{}),
	}, nextKinds()...)
}

// row is the row of the kind codec reads, in commandVersion only.
func row(name string, protocol int, codec kindCodec) kindRow {
	return kindRow{kind: codec.kind(), name: name, protocol: protocol, codec: codec, newest: commandVersion}
}

// readsUpTo lets r's entries be written in formats up to newest, for a
// kind whose newer formats carry what older builds would drop.
func (r kindRow) readsUpTo(newest byte) kindRow {
	r.newest = newest
	return r
}

// lookup finds k's row. Heartbeats come first: the hot path looks no
// further.
func (t kindTable) lookup(k Kind) (*kindRow, bool) {
	for i := range t {
		if t[i].kind == k {
			return &t[i], true
		}
	}
	return nil, false
}

// decode parses a log entry with the row of its kind. An unknown kind, or
// a format newer than its row reads, gives ErrUnknownKind.
func (t kindTable) decode(b []byte) (command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: entry of %d bytes", ErrCorrupt, len(b))
	}
	kind, version, body := Kind(b[0]), b[1], b[2:]
	r, known := t.lookup(kind)
	newest := byte(commandVersion)
	if known {
		newest = r.newest
	}
	if version < commandVersion || version > newest {
		return nil, fmt.Errorf("%w: kind %d version %d", ErrUnknownKind, kind, version)
	}
	if !known {
		return nil, fmt.Errorf("%w: %d", ErrUnknownKind, kind)
	}
	return r.codec.decode(body)
}

// Kinds lists the command kinds this build knows, in the order of the table.
func Kinds() []Kind {
	t := commandKinds()
	kinds := make([]Kind, len(t))
	for i, r := range t {
		kinds[i] = r.kind
	}
	return kinds
}

// KindName is the name of kind k, as metrics label it; known is false for
// a kind this build does not know.
func KindName(k Kind) (name string, known bool) {
	if r, ok := commandKinds().lookup(k); ok {
		return r.name, true
	}
	return "", false
}

// How each kind is applied. Each runs under the write lock (see Apply).

func (c Heartbeat) applyTo(f *FSM, _ uint64) any { return f.applyHeartbeat(c).orNil() }

func (c Configure) applyTo(f *FSM, _ uint64) any { f.applyConfigure(c); return nil }

func (c Incidents) applyTo(f *FSM, index uint64) any { return f.applyIncidents(c, index) }

func (c ActionResult) applyTo(f *FSM, _ uint64) any { return f.applyActionResult(c) }

func (c Pause) applyTo(f *FSM, _ uint64) any { return f.applyPause(c) }

func (c Repeats) applyTo(f *FSM, _ uint64) any { f.applyRepeats(c); return nil }

func (c Stable) applyTo(f *FSM, _ uint64) any { f.applyStable(c); return nil }

func (c Define) applyTo(f *FSM, _ uint64) any { return f.applyDefine(c) }

func (c Delete) applyTo(f *FSM, _ uint64) any { return f.applyDelete(c) }

func (c Attempt) applyTo(f *FSM, _ uint64) any { f.applyAttempt(c); return nil }

func (c Ping) applyTo(f *FSM, index uint64) any { return f.applyPing(c, index).orNil() }

func (c Window) applyTo(f *FSM, _ uint64) any { return f.applyWindow(c) }

func (c WindowEnd) applyTo(f *FSM, _ uint64) any { f.applyWindowEnd(c); return nil }
