// Package cluster runs one watchdog node: Raft over TCP with BoltDB stores,
// memberlist gossip for discovery and bootstrap, the leader's membership
// reconciliation, and the heartbeat path (group commit, forwarding to the leader).
package cluster
