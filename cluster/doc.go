// Package cluster runs one watchdog node: Raft over TCP with its log in
// BoltDB or raft-wal (logstore.go), memberlist gossip for discovery and
// bootstrap, the leader's membership reconciliation, the heartbeat path
// (group commit, forwarding to the leader), and all the HTTP traffic
// between nodes, both ends (peer*.go).
package cluster
