// Command watchdog is the watchdog binary: "watchdog agent" assembles and runs a node of the
// cluster (agent.go); every other command is a client of one.
package main
