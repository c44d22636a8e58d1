package fsm

import (
	"math"
	"strings"
	"time"
)

// Uptime at a glance: a service's status over time, read from its
// replicated history (the events that change it: down, flapping, up,
// recovered, paused, resumed), so every replica tells the same story.
// History is bounded (history_per_service): when events have been dropped,
// the time before the oldest one kept is unknown, and left out of both the
// uptime and the timeline. When none has been, the time before the first
// event counts as up: a service starts up, and the watchdog knew of no
// downtime then.

// The timeline's letters, one per bucket.
const (
	TimelineUp      = 'u' // up (or new) for all of the bucket that is known
	TimelineDown    = 'd' // down for some of it
	TimelinePaused  = 'p' // paused, never up or down
	TimelineUnknown = '-' // before the history kept
)

// stateAfter is the status an event leaves its service in, if it changes it.
func stateAfter(r Record) (Status, bool) {
	switch r.Event {
	case EventDown, EventFlapping:
		return StatusDown, true
	case EventRecovered, EventUp:
		return StatusUp, true
	case EventPaused:
		return StatusPaused, true
	case EventResumed:
		if r.Incident != "" {
			return StatusDown, true
		}
		return StatusUp, true
	}
	return "", false
}

// stateBefore is what the service must have been just before r, when r
// says ("" when it cannot tell).
func stateBefore(r Record) Status {
	switch r.Event {
	case EventDown:
		return StatusUp
	case EventRecovered, EventUp, EventFlapping:
		return StatusDown
	case EventResumed:
		return StatusPaused
	}
	return ""
}

// spans calls fn for each stretch of [from, to) in one status, "" where it
// is unknown. h is the history, oldest first; complete says nothing has
// been dropped from it; current is the service's status now.
func spans(h []Record, complete bool, current Status, from, to int64, fn func(from, to int64, st Status)) {
	first, changed := firstChange(h)
	var st Status // before the first change kept
	switch {
	case !changed:
		st = current // as it is now, all along the history kept
	case stateBefore(first) != "":
		st = stateBefore(first)
	case complete:
		st = StatusUp // a service starts up; its first change was a pause
	}
	start := int64(math.MinInt64)
	if !complete && len(h) > 0 {
		emit(fn, from, to, start, h[0].At, "") // before the oldest event kept
		start = h[0].At
	}
	for _, r := range h {
		next, ok := stateAfter(r)
		if !ok {
			continue
		}
		emit(fn, from, to, start, r.At, st)
		st, start = next, max(start, r.At)
	}
	emit(fn, from, to, start, to, st)
}

func firstChange(h []Record) (Record, bool) {
	for _, r := range h {
		if _, ok := stateAfter(r); ok {
			return r, true
		}
	}
	return Record{}, false
}

// emit calls fn with [a, b) clipped to [from, to), if anything is left.
func emit(fn func(from, to int64, st Status), from, to, a, b int64, st Status) {
	a, b = max(a, from), min(b, to)
	if a < b {
		fn(a, b, st)
	}
}

// history returns a service's events and whether none were dropped, under
// the read lock; the slice is shared, read-only.
func (f *FSM) history(id string) (h []Record, complete bool, current Status, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s, ok := f.services[id]
	if !ok {
		return nil, false, "", false
	}
	h = f.events[id]
	return h, len(h) < f.limit(), s.Status, true
}

// Uptime is the share of each period up to now that the service was up,
// of the time it was up or down (paused time and time before its history
// are left out); -1 for a period with no such time. ok is false for an
// unknown service.
func (f *FSM) Uptime(id string, now time.Time, periods ...time.Duration) (shares []float64, ok bool) {
	h, complete, current, ok := f.history(id)
	if !ok {
		return nil, false
	}
	to := now.UnixNano()
	for _, p := range periods {
		var up, down int64
		spans(h, complete, current, to-int64(p), to, func(a, b int64, st Status) {
			switch st {
			case StatusUp:
				up += b - a
			case StatusDown:
				down += b - a
			}
		})
		share := -1.0
		if up+down > 0 {
			share = float64(up) / float64(up+down)
		}
		shares = append(shares, share)
	}
	return shares, true
}

// Timeline is a service's status strip: n buckets of size each, the last
// one holding now, aligned to multiples of size since the Unix epoch (so
// every replica, and every service, shares the buckets), oldest first, one
// letter each (TimelineUp and the others). ok is false for an unknown
// service.
func (f *FSM) Timeline(id string, now time.Time, n int, size time.Duration) (strip string, start time.Time, ok bool) {
	h, complete, current, ok := f.history(id)
	if !ok {
		return "", time.Time{}, false
	}
	end := now.Truncate(size).Add(size)
	start = end.Add(-time.Duration(n) * size)
	marks := []byte(strings.Repeat(string(TimelineUnknown), n))
	spans(h, complete, current, start.UnixNano(), min(now.UnixNano(), end.UnixNano()), func(a, b int64, st Status) {
		for i := int((a - start.UnixNano()) / int64(size)); i < n && start.UnixNano()+int64(i)*int64(size) < b; i++ {
			marks[i] = mark(marks[i], st)
		}
	})
	return string(marks), start, true
}

// mark is a bucket's letter once it has also seen st: down wins, then up,
// then paused.
func mark(old byte, st Status) byte {
	m := old
	switch st {
	case StatusDown:
		m = TimelineDown
	case StatusUp:
		m = TimelineUp
	case StatusPaused:
		m = TimelinePaused
	}
	if markRank(m) > markRank(old) {
		return m
	}
	return old
}

// markOrder is the timeline's letters, weakest first.
const markOrder = string(TimelineUnknown) + string(TimelinePaused) + string(TimelineUp) + string(TimelineDown)

func markRank(b byte) int { return strings.IndexByte(markOrder, b) }
