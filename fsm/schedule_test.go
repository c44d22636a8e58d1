package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// ticks lists the first len(want) ticks after from, in UTC.
func checkTicks(t *testing.T, expr, tz, from string, want ...string) {
	t.Helper()
	s, err := ParseSchedule(expr, tz)
	if err != nil {
		t.Fatal(err)
	}
	at := mustTime(t, from)
	var got []string
	for range want {
		at = s.Next(at)
		got = append(got, at.UTC().Format(time.RFC3339))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%q in %s after %s:\n got %v\nwant %v", expr, tz, from, got, want)
	}
}

// Daylight saving time as healthchecks (cronsim, after Debian's cron)
// handles it: a job at a fixed time the clocks skip runs once, at the jump;
// one in the hour they repeat runs once, the first time; a job on every
// minute or hour runs at every real instant that matches.
func TestScheduleDSTEuropeBerlin(t *testing.T) {
	// Spring: 2024-03-31 02:00 CET becomes 03:00 CEST (01:00Z).
	checkTicks(t, "30 2 * * *", "Europe/Berlin", "2024-03-30T12:00:00+01:00",
		"2024-03-31T01:00:00Z", // 02:30 does not exist: at the jump, 03:00 CEST
		"2024-04-01T00:30:00Z") // 02:30 CEST
	checkTicks(t, "0,30 2 * * *", "Europe/Berlin", "2024-03-30T12:00:00+01:00",
		"2024-03-31T01:00:00Z", // both skipped ticks run once, at the jump
		"2024-04-01T00:00:00Z")
	checkTicks(t, "0 * * * *", "Europe/Berlin", "2024-03-31T00:30:00+01:00",
		"2024-03-31T00:00:00Z", // 01:00 CET
		"2024-03-31T01:00:00Z") // 03:00 CEST, an hour later: there is no 02:00
	// Autumn: 2024-10-27 03:00 CEST becomes 02:00 CET (01:00Z).
	checkTicks(t, "30 2 * * *", "Europe/Berlin", "2024-10-26T12:00:00+02:00",
		"2024-10-27T00:30:00Z", // 02:30 CEST, the first 02:30
		"2024-10-28T01:30:00Z") // not 02:30 CET the same night: the next day's
	checkTicks(t, "30 2 * * *", "Europe/Berlin", "2024-10-27T02:20:00+01:00", // the second 02:20
		"2024-10-28T01:30:00Z") // 02:30 CET that night would be a second run
	checkTicks(t, "*/30 * * * *", "Europe/Berlin", "2024-10-27T01:10:00+02:00",
		"2024-10-26T23:30:00Z", "2024-10-27T00:00:00Z", "2024-10-27T00:30:00Z",
		"2024-10-27T01:00:00Z", "2024-10-27T01:30:00Z", "2024-10-27T02:00:00Z") // every half hour of real time
}

func TestScheduleDSTAmericaNewYork(t *testing.T) {
	// Spring: 2024-03-10 02:00 EST becomes 03:00 EDT (07:00Z).
	checkTicks(t, "30 2 * * *", "America/New_York", "2024-03-09T12:00:00-05:00",
		"2024-03-10T07:00:00Z", // at the jump, 03:00 EDT
		"2024-03-11T06:30:00Z") // 02:30 EDT
	checkTicks(t, "15 3 * * *", "America/New_York", "2024-03-09T12:00:00-05:00",
		"2024-03-10T07:15:00Z", "2024-03-11T07:15:00Z") // 03:15 exists: unchanged
	// Autumn: 2024-11-03 02:00 EDT becomes 01:00 EST (06:00Z).
	checkTicks(t, "30 1 * * *", "America/New_York", "2024-11-02T12:00:00-04:00",
		"2024-11-03T05:30:00Z", // 01:30 EDT, the first
		"2024-11-04T06:30:00Z") // 01:30 EST the next day, not 06:30Z the same night
	checkTicks(t, "@daily", "America/New_York", "2024-11-02T12:00:00-04:00",
		"2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z")
	checkTicks(t, "@hourly", "America/New_York", "2024-11-03T00:30:00-04:00",
		"2024-11-03T05:00:00Z", "2024-11-03T06:00:00Z", "2024-11-03T07:00:00Z") // 01:00 EDT, 01:00 EST, 02:00 EST
}

func TestScheduleSyntax(t *testing.T) {
	checkTicks(t, "0 9 * jan-mar MON-FRI", "", "2024-01-05T10:00:00Z", // a Friday
		"2024-01-08T09:00:00Z", "2024-01-09T09:00:00Z")
	checkTicks(t, "5,35 */6 1-2 * *", "UTC", "2024-02-01T00:00:00Z",
		"2024-02-01T00:05:00Z", "2024-02-01T00:35:00Z", "2024-02-01T06:05:00Z")
	checkTicks(t, "@weekly", "UTC", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z")
	checkTicks(t, "@monthly", "Asia/Tokyo", "2024-01-01T00:00:00Z", "2024-01-31T15:00:00Z")
	checkTicks(t, "@yearly", "UTC", "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z")
	// Day of month and day of week both restricted: either matches (cron's rule).
	checkTicks(t, "0 0 13 * fri", "UTC", "2024-09-10T00:00:00Z",
		"2024-09-13T00:00:00Z", "2024-09-20T00:00:00Z")

	for expr, want := range map[string]string{
		"":                                     "want five fields",
		"* * * *":                              "want five fields",
		"0 * * * * *":                          "want five fields",
		"@every 5m":                            "shorthands are",
		"@reboot":                              "shorthands are",
		"61 * * * *":                           "above maximum",
		"*/0 * * * *":                          "schedule",
		"0 0 30 2 *":                           "never fires",
		"TZ=UTC 0 * * *":                       "not a cron field",
		"0 0 ? * *":                            "not a cron field",
		strings.Repeat("1,", 60) + "1 * * * *": "at most 100 characters",
	} {
		_, err := ParseSchedule(expr, "")
		if err == nil || !errors.Is(err, ErrBadSchedule) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSchedule(%q) = %v, want a schedule error with %q", expr, err, want)
		}
	}
	for _, tz := range []string{"Mars/Olympus", "Local", "../etc/passwd", "Europe/Berlin "} {
		if _, err := ParseSchedule("@daily", tz); !errors.Is(err, ErrBadZone) {
			t.Errorf("zone %q: %v, want a tz error", tz, err)
		}
	}
}

// The state machine refuses what it cannot watch.
func TestCheckScheduledDefinition(t *testing.T) {
	for name, c := range map[string]struct {
		def  Definition
		want string
	}{
		"both":        {Definition{Timeout: time.Minute, Schedule: "@daily", Grace: time.Minute}, "exclude each other"},
		"no grace":    {Definition{Schedule: "@daily"}, "grace"},
		"bad":         {Definition{Schedule: "@every 1m", Grace: time.Minute}, "shorthands"},
		"tz alone":    {Definition{Timeout: time.Minute, TZ: "UTC"}, "tz needs a schedule"},
		"neither":     {Definition{}, "timeout must be positive"},
		"dup depends": {Definition{Timeout: time.Minute, DependsOn: []string{"a", "a"}}, "more than once"},
	} {
		if err := c.def.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Check() = %v, want %q", name, err, c.want)
		}
	}
	ok := Definition{Schedule: "*/5 * * * *", TZ: "Europe/Berlin", Grace: time.Minute}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
}

// A scheduled service is overdue its grace after the first tick after its
// last success; a start opens a run that must end within the grace; every
// replica applying the same entries sees the same deadline.
func TestScheduledServiceDeadlines(t *testing.T) {
	defined := mustTime(t, "2024-05-01T10:20:00Z")
	a, b := newApplier(t), newApplier(t)
	both := func(c Command) {
		a.apply(c)
		b.apply(c)
	}
	def := Definition{Schedule: "0 * * * *", Grace: 5 * time.Minute, Actions: []string{"page"}}
	both(Define{At: defined.UnixNano(), Service: "job", Def: def})
	tick := mustTime(t, "2024-05-01T11:00:00Z")
	for _, f := range []*FSM{a.f, b.f} {
		s, _ := f.Service("job")
		if got := s.NextDeadline(); !got.Equal(tick.Add(5 * time.Minute)) {
			t.Fatalf("next deadline %v, want the 11:00 tick plus grace", got)
		}
	}
	since := defined // the leader watches from before the definition
	if due, _ := a.f.Overdue(tick.Add(5*time.Minute-time.Second), since); len(due) != 0 {
		t.Fatalf("due inside the grace: %v", due)
	}
	if due, _ := a.f.Overdue(tick.Add(5*time.Minute), since); len(due) != 1 {
		t.Fatalf("not due at tick plus grace: %v", due)
	}

	// The job succeeds at 11:01: due at 12:05 now.
	both(Heartbeat{At: tick.Add(time.Minute).UnixNano(), IDs: []string{"job"}})
	if due, next := a.f.Overdue(tick.Add(time.Hour), since); len(due) != 0 || !next.Equal(tick.Add(time.Hour+5*time.Minute)) {
		t.Fatalf("after a success: due %v, next %v", due, next)
	}
	// A run starts at 11:58: it must end by 12:03, before the tick's grace.
	both(Ping{At: tick.Add(58 * time.Minute).UnixNano(), Service: "job", Signal: SignalStart})
	if s := a.service("job"); !s.NextDeadline().Equal(tick.Add(63*time.Minute)) || s.LastSeen != tick.Add(time.Minute).UnixNano() {
		t.Fatalf("a start: deadline %v, last seen %v", s.NextDeadline(), time.Unix(0, s.LastSeen))
	}
	due, _ := a.f.Overdue(tick.Add(63*time.Minute), since)
	if len(due) != 1 {
		t.Fatalf("a run past its grace is not due: %v", due)
	}
	// Meanwhile its success lands: the open is stale and changes nothing.
	both(Heartbeat{At: tick.Add(62 * time.Minute).UnixNano(), IDs: []string{"job"}})
	if got := a.apply(Incidents{At: tick.Add(63 * time.Minute).UnixNano(), Opens: due}); got.(Opened)[0] != "" {
		t.Fatalf("a stale open took effect: %v", got)
	}
	if s := a.service("job"); s.Started != 0 || !s.NextDeadline().Equal(tick.Add(2*time.Hour+5*time.Minute)) {
		t.Fatalf("after the run's success: started %d, deadline %v", s.Started, s.NextDeadline())
	}

	// A new leader that took over long after the last tick gives a full
	// grace from then.
	late := tick.Add(10 * time.Hour)
	if due, next := a.f.Overdue(late, late); len(due) != 0 || !next.Equal(late.Add(5*time.Minute)) {
		t.Fatalf("failover: due %v, next %v", due, next)
	}
}

// Define and Configure carrying a schedule, a zone or dependencies are
// written in a format an older build cannot read (it stops rather than
// drop them), and need ProtocolSchedules; without them, as before.
func TestScheduleFieldsNeedTheirProtocol(t *testing.T) {
	plain := Define{At: 1, Service: "a", Def: Definition{Timeout: time.Second}}
	cases := []struct {
		c       Command
		version byte
		proto   int
	}{
		{plain, 1, BaseProtocol},
		{Define{At: 1, Service: "a", Def: Definition{Schedule: "@daily", Grace: time.Minute}}, 2, ProtocolSchedules},
		{Define{At: 1, Service: "a", Def: Definition{Timeout: time.Second, DependsOn: []string{"b"}}}, 2, ProtocolSchedules},
		{Configure{At: 1, Defaults: Definition{Timeout: time.Second}}, 1, BaseProtocol},
		{Configure{At: 1, Defaults: Definition{Timeout: time.Second},
			Services: map[string]Definition{"x": {Schedule: "@daily", TZ: "Europe/Berlin", Grace: time.Minute}}}, 2, ProtocolSchedules},
		{Heartbeat{At: 1, IDs: []string{"a"}}, 1, BaseProtocol},
	}
	for _, c := range cases {
		b, err := Encode(c.c)
		if err != nil {
			t.Fatal(err)
		}
		if b[1] != c.version || CommandProtocol(c.c) != c.proto {
			t.Errorf("%T: version %d, protocol %d; want %d, %d", c.c, b[1], CommandProtocol(c.c), c.version, c.proto)
		}
		back, err := Decode(b)
		if err != nil {
			t.Fatalf("%T: %v", c.c, err)
		}
		if d, ok := back.(Define); ok && !reflect.DeepEqual(d.Def, c.c.(Define).Def) {
			t.Errorf("round trip lost fields: %+v", d.Def)
		}
	}
	if ProtocolVersion < ProtocolSchedules {
		t.Fatalf("this build speaks protocol %d, below its own schedules' %d", ProtocolVersion, ProtocolSchedules)
	}
	// What an older build does with version 2 (it reads only 1), this
	// build does with a version beyond its own: it refuses to decode.
	b, _ := Encode(plain)
	b[1] = scheduleFormat + 1
	if _, err := Decode(b); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("a newer format of Define decoded: %v", err)
	}
	// Kinds that have no newer format refuse version 2.
	hb, _ := Encode(Ping{At: 1, Service: "a", Signal: SignalStart})
	hb[1] = scheduleFormat
	if _, err := Decode(hb); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("a Ping in version 2 decoded: %v", err)
	}
}

// A snapshot that holds a schedule is written in a version an older build
// refuses; one that does not, in the version it reads.
func TestSnapshotVersionFollowsWhatItHolds(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 1, IDs: []string{"a"}})
	if v := snapshotHeaderVersion(t, a.f); v != snapshotVersion {
		t.Fatalf("plain snapshot version %d", v)
	}
	a.apply(Define{At: 2, Service: "job", Def: Definition{Schedule: "*/5 * * * *", TZ: "Europe/Berlin", Grace: time.Minute}})
	if v := snapshotHeaderVersion(t, a.f); v != snapshotScheduleVersion {
		t.Fatalf("snapshot with a schedule: version %d", v)
	}
	restored := New()
	if err := restored.Restore(readCloser(persist(t, a.f))); err != nil {
		t.Fatal(err)
	}
	s, _ := restored.Service("job")
	job := a.service("job")
	if want := job.NextDeadline(); s.Def.Schedule != "*/5 * * * *" || s.Def.TZ != "Europe/Berlin" || !s.NextDeadline().Equal(want) {
		t.Fatalf("restored %+v, deadline %v, want %v", s.Def, s.NextDeadline(), want)
	}
}

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

func snapshotHeaderVersion(t *testing.T, f *FSM) int {
	t.Helper()
	var h snapshotHeader
	line, _, _ := bytes.Cut(persist(t, f), []byte("\n"))
	if err := json.Unmarshal(line, &h); err != nil {
		t.Fatal(err)
	}
	return h.Version
}
