// Package fsm is the replicated state: services, incidents and history, changed only by the
// Raft log commands it defines and encodes; applying them reads no clock and does no I/O.
package fsm
