// Package httpapi is the watchdog's HTTP interface: heartbeat routes any node
// accepts, the read API, health and readiness, and the internal route on which
// the leader takes heartbeats forwarded by its followers.
package httpapi
