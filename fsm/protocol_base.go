//go:build !watchdog_nextproto

package fsm

// ProtocolVersion is the protocol this build speaks: it knows every kind
// MinProtocol puts at or below it.
const ProtocolVersion = releaseProtocol

// nextKinds are the rows the watchdog_nextproto build (protocol_next.go)
// adds to the table of kinds: none in this build.
func nextKinds() kindTable { return nil }
