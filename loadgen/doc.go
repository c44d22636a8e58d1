// Package loadgen is `watchdog bench`: it sends heartbeats to a watchdog cluster's nodes and reports
// the throughput, the errors by kind, the latency percentiles and, with -cpu-pids, the servers' CPU.
package loadgen
