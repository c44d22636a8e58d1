// Package watcher is the leader's duty: it finds services whose heartbeats
// stopped, commits their incidents through Raft, and only then runs the
// actions those incidents owe, recording each outcome back through Raft.
package watcher
