package cluster

import (
	"sync/atomic"
	"time"
)

// Clock is where a node reads the time. Wall is the time of day: an NTP
// step, a resumed VM or an operator's date -s can move it either way at
// any moment. Mono only moves forward, at the rate time passes; its zero
// is arbitrary.
type Clock interface {
	Wall() time.Time
	Mono() time.Duration
}

// SystemClock is the operating system's clock, what a node uses unless its
// Config says otherwise.
type SystemClock struct{ origin time.Time }

// NewSystemClock returns the system clock, its monotonic zero now.
func NewSystemClock() *SystemClock { return &SystemClock{origin: time.Now()} }

// Wall returns the time of day, without Go's monotonic reading, so that
// arithmetic on it is wall-clock arithmetic.
func (c *SystemClock) Wall() time.Time { return time.Now().Round(0) }

// Mono returns the time elapsed since the clock was made, on the
// monotonic clock.
func (c *SystemClock) Mono() time.Duration { return time.Since(c.origin) }

// leaderTerm is the time of one leadership: the wall clock read once, when
// the leader had caught up with the log, and advanced from then on by the
// monotonic clock only. The leader stamps it into everything it commits and
// the watcher compares it with those stamps, so a step of the wall clock
// during the leadership changes neither: silence is measured on the
// monotonic clock. It starts after every time already committed, whatever
// the new leader's clock says, so that each heartbeat it stamps moves its
// service's last_seen forward. A silence stamped by an earlier leader is
// never measured as longer than it was: either it started before the term
// (every service has a full timeout from the term's start), or the term
// started just after the latest stamp, which the earlier leader made before
// this one took over.
type leaderTerm struct {
	clock Clock
	since time.Time     // the term's time when it started
	mono  time.Duration // the monotonic reading then
}

// newLeaderTerm starts a term now; latest is the latest time the
// replicated state holds. The term starts when the leader has caught up
// with the log, and its duties count every service's silence from then at
// the earliest: a heartbeat this leader committed before (with its wall
// clock, which may be behind what is committed) may not have moved its
// service's last_seen.
func newLeaderTerm(clock Clock, latest time.Time) *leaderTerm {
	mono, wall := clock.Mono(), clock.Wall()
	if !wall.After(latest) {
		wall = latest.Add(time.Nanosecond)
	}
	return &leaderTerm{clock: clock, since: wall, mono: mono}
}

func (t *leaderTerm) now() time.Time { return t.since.Add(t.clock.Mono() - t.mono) }

// terms holds the current leadership's time, nil while this node is not an
// established leader.
type terms struct {
	clock Clock
	cur   atomic.Pointer[leaderTerm]
}

// Now is the time this node stamps into what it commits: on the leader,
// its leadership's time (leaderTerm); elsewhere, and on a leader that has
// not caught up with the log yet, the wall clock.
func (n *Node) Now() time.Time {
	if t := n.terms.cur.Load(); t != nil {
		return t.now()
	}
	return n.terms.clock.Wall()
}
