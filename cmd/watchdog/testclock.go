//go:build watchdog_testclock

package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
)

// This file is only in a test build (go build -tags watchdog_testclock),
// which the chaos suite runs: there, WATCHDOG_TEST_CLOCK_FILE names a file
// holding an offset (a Go duration, "1h", "-30s") added to the node's wall
// clock, which the test rewrites while the node runs to step its clock.
// The product build has no such hook (testclock_off.go).

// testClockEnv names the offset file.
const testClockEnv = "WATCHDOG_TEST_CLOCK_FILE"

// testClock returns the tune that gives the node the offset clock, when
// the environment names a file.
func testClock() []tune {
	path := os.Getenv(testClockEnv)
	if path == "" {
		return nil
	}
	c := &offsetClock{sys: cluster.NewSystemClock(), path: path}
	fmt.Fprintf(os.Stderr, "watchdog test clock: wall clock offset read from %s\n", path)
	// Read it on a follower too, which reads its clock rarely: the test
	// waits for the line saying the step took effect.
	go func() {
		for range time.Tick(offsetReread) {
			c.currentOffset()
		}
	}()
	return []tune{func(cc *cluster.Config) { cc.Clock = c }}
}

// offsetClock is the system clock, its wall clock moved by the offset in
// a file, read again at most every offsetReread.
type offsetClock struct {
	sys  *cluster.SystemClock
	path string

	mu     sync.Mutex
	read   time.Duration // monotonic reading when the file was last read
	offset time.Duration
	fresh  bool
}

const offsetReread = 20 * time.Millisecond

func (c *offsetClock) Wall() time.Time { return c.sys.Wall().Add(c.currentOffset()) }

func (c *offsetClock) Mono() time.Duration { return c.sys.Mono() }

func (c *offsetClock) currentOffset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.sys.Mono()
	if c.fresh && now-c.read < offsetReread {
		return c.offset
	}
	c.read, c.fresh = now, true
	b, err := os.ReadFile(c.path)
	if err != nil {
		return c.offset // absent: no step yet
	}
	d, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil || d == c.offset {
		return c.offset
	}
	fmt.Fprintf(os.Stderr, "watchdog test clock: wall clock offset now %s\n", d)
	c.offset = d
	return d
}
