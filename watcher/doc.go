// Package watcher is the leader's duty: it commits an incident for each service gone silent,
// then runs the actions incidents owe (exec, log, notifications) and commits each outcome.
package watcher
