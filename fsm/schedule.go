package fsm

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Cron schedules. A service with a Schedule is expected once per tick, as a
// healthchecks.io cron check is: it is overdue when no success arrives
// within its grace after a tick. The expression is parsed by robfig/cron,
// but evaluated here, because robfig/cron evaluated in a zone with daylight
// saving time skips a tick that falls in the hour the clocks skip and runs
// one in the hour they repeat twice. The rules here are healthchecks'
// (its cronsim library, which follows Debian's cron):
//
//   - an expression whose minute and hour fields are both fixed (not
//     starting with "*", such as "30 2 * * *" or @daily) runs at wall-clock
//     times: a tick the clocks skip runs once, at the jump; a tick in the
//     repeated hour runs once, the first time that hour comes;
//   - any other (such as "*/15 * * * *" or @hourly) runs at real instants:
//     every instant whose wall-clock time matches, so the repeated hour has
//     its ticks twice and the skipped hour none.

// MaxSchedule bounds a schedule's length, as healthchecks does.
const MaxSchedule = 100

// DefaultTZ is the zone of a schedule that names none.
const DefaultTZ = "UTC"

// ErrBadSchedule and ErrBadZone are returned for a schedule or zone that
// cannot be used; their texts are the fields' names, so that the errors
// read "schedule: ..." and "tz: ...".
var (
	ErrBadSchedule = errors.New("schedule")
	ErrBadZone     = errors.New("tz")
)

// descriptors are the shorthands a schedule may use, as five fields.
var descriptors = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// Schedule is a parsed cron expression in its zone. It is immutable.
type Schedule struct {
	spec  *cron.SpecSchedule // evaluated in UTC, on wall-clock times
	loc   *time.Location
	fixed bool // minute and hour fields fixed: wall-clock rules (see above)
}

// ParseSchedule parses a five-field cron expression (or a shorthand such as
// @daily) in the IANA zone tz ("" is UTC).
func ParseSchedule(expr, tz string) (*Schedule, error) {
	loc, err := loadZone(tz)
	if err != nil {
		return nil, err
	}
	return parseIn(expr, loc)
}

func loadZone(tz string) (*time.Location, error) {
	if tz == "" {
		tz = DefaultTZ
	}
	if len(tz) > MaxSchedule {
		return nil, fmt.Errorf("%w: at most %d characters, got %d", ErrBadZone, MaxSchedule, len(tz))
	}
	// "Local" is the node's own zone, which replicas need not share.
	if tz == "Local" || strings.ContainsAny(tz, " \t") {
		return nil, fmt.Errorf("%w: unknown time zone %q: want an IANA name such as \"Europe/Berlin\"", ErrBadZone, tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("%w: unknown time zone %q: want an IANA name such as \"Europe/Berlin\"", ErrBadZone, tz)
	}
	return loc, nil
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

func parseIn(expr string, loc *time.Location) (*Schedule, error) {
	if len(expr) > MaxSchedule {
		return nil, fmt.Errorf("%w: at most %d characters, got %d", ErrBadSchedule, MaxSchedule, len(expr))
	}
	fields := strings.Fields(expr)
	if len(fields) > 0 && strings.HasPrefix(fields[0], "@") {
		d, ok := descriptors[strings.ToLower(fields[0])]
		if !ok || len(fields) > 1 {
			return nil, fmt.Errorf("%w: %q: the shorthands are @hourly, @daily, @weekly, @monthly and @yearly (for a fixed period, use timeout)", ErrBadSchedule, expr)
		}
		fields = strings.Fields(d)
	}
	if len(fields) != 5 {
		return nil, fmt.Errorf("%w: %q: want five fields (minute hour day-of-month month day-of-week), got %d", ErrBadSchedule, expr, len(fields))
	}
	for _, f := range fields {
		if strings.ContainsAny(f, "?=") {
			return nil, fmt.Errorf("%w: %q: %q is not a cron field (the zone goes in tz)", ErrBadSchedule, expr, f)
		}
	}
	parsed, err := cronParser.Parse(strings.Join(fields, " "))
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrBadSchedule, expr, err)
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrBadSchedule, expr)
	}
	spec.Location = time.UTC
	s := &Schedule{spec: spec, loc: loc,
		fixed: !strings.HasPrefix(fields[0], "*") && !strings.HasPrefix(fields[1], "*")}
	// robfig/cron gives up after five years; so does a schedule here.
	if s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("%w: %q never fires", ErrBadSchedule, expr)
	}
	return s, nil
}

// maxSteps bounds the loops of Next: a zone changes its offset a few times
// a year, and robfig/cron searches at most five years.
const maxSteps = 64

// Next is the first tick strictly after after, zero if there is none
// within five years.
func (s *Schedule) Next(after time.Time) time.Time {
	if s.fixed {
		return s.nextWall(after)
	}
	return s.nextReal(after)
}

// wall is t's time of day in s's zone, written as a UTC time: the clock on
// the wall, without the zone, which robfig/cron evaluates without DST.
func (s *Schedule) wall(t time.Time) time.Time {
	l := t.In(s.loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// nextReal finds the first instant after after whose wall-clock time
// matches, one stretch of constant offset at a time.
func (s *Schedule) nextReal(after time.Time) time.Time {
	t, from := after, s.wall(after)
	for range maxSteps {
		_, off := t.In(s.loc).Zone()
		_, end := t.In(s.loc).ZoneBounds()
		w := s.spec.Next(from)
		if w.IsZero() {
			return time.Time{}
		}
		at := w.Add(-time.Duration(off) * time.Second)
		if end.IsZero() || at.Before(end) {
			return at
		}
		// Nothing left in this stretch: go on from the next one's
		// first instant, included.
		t, from = end, s.wall(end).Add(-time.Second)
	}
	return time.Time{}
}

// nextWall finds the first wall-clock tick after after's wall-clock time
// that happens after after: a time the clocks skip is the jump; a repeated
// time is its first occurrence, which may already be past.
func (s *Schedule) nextWall(after time.Time) time.Time {
	w := s.wall(after)
	for range maxSteps {
		if w = s.spec.Next(w); w.IsZero() {
			return time.Time{}
		}
		if at := s.instant(w); at.After(after) {
			return at
		}
	}
	return time.Time{}
}

// instant is the first instant whose wall-clock time is w or, if the
// clocks skip w, the instant they jump.
func (s *Schedule) instant(w time.Time) time.Time {
	// The offsets a day either side of w include both of a transition
	// near w (zones do not change twice within two days).
	var first time.Time
	for _, probe := range []time.Time{w.Add(-26 * time.Hour), w.Add(26 * time.Hour)} {
		_, off := probe.In(s.loc).Zone()
		at := w.Add(-time.Duration(off) * time.Second)
		if s.wall(at).Equal(w) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	if !first.IsZero() {
		return first
	}
	// Skipped: read w with the earlier offset, which lands after the jump,
	// and take the start of the offset it lands in.
	_, before := w.Add(-26 * time.Hour).In(s.loc).Zone()
	start, _ := w.Add(-time.Duration(before) * time.Second).In(s.loc).ZoneBounds()
	return start
}

// compile parses the definition's schedule for the deadlines. Apply never
// refuses a zone (a node's zone database may lack one another has): it
// falls back to UTC, and only the leader's deadlines depend on it. The
// zone is checked where the definition is written.
func (d *Definition) compile() {
	if d.Schedule == "" {
		d.sched = nil
		return
	}
	loc, err := loadZone(d.TZ)
	if err != nil {
		loc = time.UTC
	}
	d.sched, _ = parseIn(d.Schedule, loc) // Check parsed it already
}

// scheduled reports whether the service is expected on a cron schedule.
func (d *Definition) scheduled() bool { return d.Schedule != "" }

// tickDeadline is when a scheduled service is overdue: its grace after the
// first tick following its last success, or after the start of a run it
// opened, whichever is first. MaxInt64 when it never ticks again.
func (s *Service) tickDeadline() int64 {
	due := int64(math.MaxInt64)
	if sch := s.Def.sched; sch != nil {
		if tick := sch.Next(time.Unix(0, s.LastSeen)); !tick.IsZero() {
			due = tick.UnixNano() + int64(s.Def.Grace)
		}
	}
	if s.Started != 0 {
		due = min(due, s.Started+int64(s.Def.Grace))
	}
	return due
}

// NextDeadline is when the service is overdue if nothing is heard from it,
// leaving aside a new leader's failover grace: LastSeen plus timeout and
// grace, or for a scheduled service the next tick after LastSeen plus
// grace (or a run's start plus grace, if that is earlier). Zero when it is
// not watched (down or paused) or never ticks again.
func (s *Service) NextDeadline() time.Time {
	if s.Status != StatusUp {
		return time.Time{}
	}
	due := s.computeDue()
	if due == math.MaxInt64 {
		return time.Time{}
	}
	return time.Unix(0, due)
}

// computeDue is the natural deadline (see NextDeadline), in Unix ns.
func (s *Service) computeDue() int64 {
	if s.Def.scheduled() {
		return s.tickDeadline()
	}
	return s.LastSeen + int64(s.Def.Timeout+s.Def.Grace)
}

// checkSchedule holds Schedule, TZ and DependsOn to what Apply relies on.
// The zone is not loaded here: Check runs in Apply, and zone databases may
// differ between nodes (see compile).
func (d *Definition) checkSchedule() error {
	if err := d.checkDepends(); err != nil {
		return err
	}
	switch {
	case d.Schedule == "" && d.TZ != "":
		return fmt.Errorf("%w: tz needs a schedule", ErrBadDefinition)
	case d.Schedule == "":
		return nil
	case d.Timeout != 0:
		return fmt.Errorf("%w: timeout and schedule exclude each other: a service is expected either within a timeout of its last heartbeat or once per tick of its schedule", ErrBadDefinition)
	case d.Grace <= 0:
		return fmt.Errorf("%w: grace: a scheduled service needs one, how long after a tick its ping may come, such as \"5m\"", ErrBadDefinition)
	}
	if _, err := parseIn(d.Schedule, time.UTC); err != nil {
		return fmt.Errorf("%w: %w", ErrBadDefinition, err)
	}
	return nil
}
