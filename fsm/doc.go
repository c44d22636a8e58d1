// Package fsm is the replicated state machine of the watchdog cluster: every
// service's definition, last heartbeat, status and incidents, changed only by
// Raft log entries whose commands are defined and encoded here, in one table
// of command kinds (kinds.go, which says how to add one).
package fsm
