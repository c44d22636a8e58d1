// Package client is the Go client of a watchdog cluster's HTTP API: heartbeats, reads and
// changes, each sent to the nodes it knows in turn until one answers or the context ends.
package client
