// Package sdnotify speaks systemd's Type=notify protocol for the agent: READY=1 once it serves,
// WATCHDOG=1 every half of $WATCHDOG_USEC while its /healthz answers, STOPPING=1 when it stops.
package sdnotify
