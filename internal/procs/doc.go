// Package procs sizes the agent's Go runtime to its load: one core while the
// node needs less than most of one (no idle thread spinning for work), every
// core as soon as it needs more. GOMAXPROCS in the environment turns it off.
package procs
