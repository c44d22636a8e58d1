// Package fsm is the replicated state: services, incidents and history, changed only by the
// Raft log commands it defines in one table of kinds (kinds.go); applying them reads no clock and does no I/O.
package fsm
