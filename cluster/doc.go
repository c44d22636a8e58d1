// Package cluster runs one node: Raft and its log store, gossip and membership, the heartbeat
// path (group commit, forwarding to the leader), the leader's clock, and all node-to-node HTTP.
package cluster
