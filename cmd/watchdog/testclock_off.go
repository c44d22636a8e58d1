//go:build !watchdog_testclock

package main

// testClock is a test build's hook for stepping the node's wall clock
// (testclock.go); the product build has none.
func testClock() []tune { return nil }
