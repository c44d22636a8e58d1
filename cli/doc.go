// Package cli is the watchdog command line's client commands (ping, run,
// status, services, pause, delete, members, snapshot, config, ...): each
// parses its flags, asks the cluster through package client and prints the
// answer; Lookup finds one by name and ExitCode gives its exit status.
package cli
