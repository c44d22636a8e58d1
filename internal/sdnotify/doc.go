// Package sdnotify speaks systemd's Type=notify protocol for the agent:
// READY=1 once it serves, WATCHDOG=1 every half of $WATCHDOG_USEC while its
// /healthz answers, and STOPPING=1 when it shuts down.
package sdnotify
