// Package loadgen is `watchdog bench`: it sends heartbeats to the nodes of
// a watchdog cluster and reports the throughput, the errors by kind and the
// latency percentiles (and, with -cpu-pids, the servers' CPU per heartbeat).
package loadgen
