// Package httpapi is the watchdog's HTTP interface over a cluster node and its replica:
// heartbeats and pings, reads, management, health, the dashboard and metrics.
package httpapi
