// Command watchdog is the watchdog binary: "watchdog agent" assembles and runs a node of the
// cluster (agent.go); "watchdog bench" is package loadgen, and every other command package cli.
package main
