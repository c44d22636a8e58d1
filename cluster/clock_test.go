package cluster

import (
	"testing"
	"time"
)

// fakeClock is a clock whose two readings the test sets.
type fakeClock struct {
	wall time.Time
	mono time.Duration
}

func (c *fakeClock) Wall() time.Time     { return c.wall }
func (c *fakeClock) Mono() time.Duration { return c.mono }

func (c *fakeClock) pass(d time.Duration) { c.wall, c.mono = c.wall.Add(d), c.mono+d }

func TestLeaderTermMovesWithTheMonotonicClockOnly(t *testing.T) {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	c := &fakeClock{wall: start, mono: 10 * time.Second}
	term := newLeaderTerm(c, start.Add(-time.Second))
	if !term.since.Equal(start) || !term.now().Equal(start) {
		t.Fatalf("a term started at %s: since %s, now %s", start, term.since, term.now())
	}
	for _, step := range []time.Duration{time.Hour, -2 * time.Hour} {
		before := term.now()
		c.wall = c.wall.Add(step)
		c.pass(time.Second)
		if got := term.now().Sub(before); got != time.Second {
			t.Fatalf("after a step of %s and a second: the term's time moved %s, want 1s", step, got)
		}
	}
}

// A new leader whose clock is behind the stamps already committed starts
// after them, so that its first stamp moves last_seen forward.
func TestLeaderTermStartsAfterWhatIsCommitted(t *testing.T) {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	c := &fakeClock{wall: start, mono: time.Minute}
	latest := start.Add(30 * time.Second) // the old leader's clock was 30 s ahead
	term := newLeaderTerm(c, latest)
	if !term.now().After(latest) || !term.since.After(latest) {
		t.Fatalf("term starts at %s (since %s), not after the latest stamp %s", term.now(), term.since, latest)
	}
	c.pass(time.Second)
	if got := term.now().Sub(latest); got != time.Second+time.Nanosecond {
		t.Fatalf("a second later the term is %s past the latest stamp, want 1s", got)
	}
}
