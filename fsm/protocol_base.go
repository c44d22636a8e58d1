//go:build !watchdog_nextproto

package fsm

// ProtocolVersion is the protocol this build speaks: it knows every kind
// MinProtocol puts at or below it.
const ProtocolVersion = max(WindowProtocol, ProtocolSchedules)

// The hooks of the watchdog_nextproto build (protocol_next.go): this build
// has no kind beyond the base protocol.

func nextProtocol(Kind) int { return 0 }

func decodeNext(Kind, []byte) (Command, bool, error) { return nil, false, nil }

func (f *FSM) applyNext(Command, uint64) (any, bool) { return nil, false }
