// Package cluster runs one watchdog node: Raft over TCP with its log in
// raft-wal or BoltDB (logstore.go), memberlist gossip for discovery and
// bootstrap, the leader's membership reconciliation, and the heartbeat path
// (group commit, forwarding to the leader).
package cluster
