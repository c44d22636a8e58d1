package fsm

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Status is where a service stands as far as the watchdog is concerned.
type Status string

// The statuses a service can have. Flapping is not a status: a flapping
// service is still up or down (the truth about its heartbeats), and its open
// incident says it is flapping (see Incident.Flapping).
const (
	StatusUp     Status = "up"
	StatusDown   Status = "down"
	StatusPaused Status = "paused"
	// StatusNew is shown, never stored: a service that is up (watched, as
	// any other, from when it was defined) but was never heard from nor
	// went down, as healthchecks shows a check before its first ping. See
	// Service.New and Service.Shown.
	StatusNew Status = "new"
)

// Event names what happened to a service. The first four run actions; all
// of them appear in a service's history.
type Event string

// The events. Numbers of the log format do not depend on these strings, but
// the API and the notifications show them: do not rename one.
const (
	EventDown      Event = "down"      // an incident opened (or, while flapping, it went silent again)
	EventRecovered Event = "recovered" // a heartbeat resolved the incident
	EventRepeat    Event = "repeat"    // still down: the down actions run again (restart policy)
	EventFlapping  Event = "flapping"  // it went down too often within flap_window: notifications held
	EventUp        Event = "up"        // a heartbeat while flapping: up, but the incident stays open
	EventStable    Event = "stable"    // no change for flap_window: flapping is over
	EventPaused    Event = "paused"
	EventResumed   Event = "resumed"
	EventDefined   Event = "defined"  // defined or changed through the API
	EventAttempt   Event = "attempt"  // a delivery attempt that failed and will be retried
	EventDelivery  Event = "delivery" // an action's outcome, committed once
	EventStart     Event = "start"    // a ping said a run began
	EventFail      Event = "fail"     // a ping said a run failed (fail, or a non-zero exit status)
	EventSuccess   Event = "success"  // a success ping with a note, a run id or an exit status
)

// ActionState is how far one action of an incident has got.
type ActionState string

// The states of an action run. Pending runs are what a leader still owes.
const (
	ActionPending ActionState = "pending"
	ActionDone    ActionState = "done"
	ActionFailed  ActionState = "failed"
)

// Source says where a service's definition comes from. It is a byte so that
// the per-service record does not grow; it reads and writes as a string.
type Source uint8

// The sources. The zero value is a service first seen through a heartbeat,
// on the defaults.
const (
	SourceHeartbeat Source = iota
	SourceConfig
	SourceAPI
)

// String implements fmt.Stringer.
func (s Source) String() string {
	switch s {
	case SourceHeartbeat:
		return "heartbeat"
	case SourceConfig:
		return "config"
	case SourceAPI:
		return "api"
	}
	return fmt.Sprintf("source(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s Source) MarshalText() ([]byte, error) {
	if s > SourceAPI {
		return nil, fmt.Errorf("fsm: unknown source %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Source) UnmarshalText(b []byte) error {
	for c := SourceHeartbeat; c <= SourceAPI; c++ {
		if c.String() == string(b) {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("fsm: unknown source %q", b)
}

// Definition is what an operator says about a service: how long it may stay
// silent and which actions run when it goes down or comes back, and its
// restart policy. Definitions are immutable once built, so many services
// share one (all the services created with the defaults point at the same
// value).
type Definition struct {
	Timeout     time.Duration `json:"timeout"`
	Actions     []string      `json:"actions,omitempty"`
	OnRecovered []string      `json:"on_recovered,omitempty"`
	// Grace is extra time after Timeout before an incident opens.
	Grace time.Duration `json:"grace,omitempty"`
	// Repeat, when set, runs the down actions again while the service
	// stays down: after Repeat, then twice as long each time (capped at
	// MaxRepeatGap), at most MaxRepeats times (0: no limit).
	Repeat     time.Duration `json:"repeat,omitempty"`
	MaxRepeats int           `json:"max_repeats,omitempty"`
	// FlapThreshold, when set, marks a service flapping when it goes down
	// more than FlapThreshold times within FlapWindow.
	FlapThreshold int           `json:"flap_threshold,omitempty"`
	FlapWindow    time.Duration `json:"flap_window,omitempty"`
	Tags          []string      `json:"tags,omitempty"`
	Description   string        `json:"description,omitempty"`
	// Schedule, when set, is a cron expression the service is expected on
	// instead of a Timeout, in zone TZ ("" is UTC): see schedule.go.
	// DependsOn names the services it depends on: see depends.go. These
	// need ProtocolSchedules (see Define.formatVersion).
	Schedule  string   `json:"schedule,omitempty"`
	TZ        string   `json:"tz,omitempty"`
	DependsOn []string `json:"depends_on,omitempty"`

	sched *Schedule // Schedule compiled (compile); nil without one
}

// Equal reports whether two definitions say the same thing.
func (d *Definition) Equal(o *Definition) bool {
	return d.Timeout == o.Timeout && slices.Equal(d.Actions, o.Actions) &&
		slices.Equal(d.OnRecovered, o.OnRecovered) && d.Grace == o.Grace &&
		d.Repeat == o.Repeat && d.MaxRepeats == o.MaxRepeats &&
		d.FlapThreshold == o.FlapThreshold && d.FlapWindow == o.FlapWindow &&
		slices.Equal(d.Tags, o.Tags) && d.Description == o.Description &&
		d.Schedule == o.Schedule && d.TZ == o.TZ && slices.Equal(d.DependsOn, o.DependsOn)
}

// Bounds of a definition that the state machine relies on.
const (
	// MaxFlapThreshold follows from counting flaps in the incident history,
	// which keeps maxIncidents: more than that many downs cannot be seen.
	MaxFlapThreshold = maxIncidents - 1
	// MaxRepeatGap caps the doubling gap between repeats: a service down
	// for weeks is reminded of daily, and the arithmetic cannot overflow.
	MaxRepeatGap = 24 * time.Hour
	// MaxMaxRepeats bounds max_repeats; more is what 0 (no limit) is for.
	MaxMaxRepeats = 1000
)

// Limits on what an operator may write in a definition, checked where it
// is written (the config file, the API). The bounds on durations catch unit
// typos ("1ms" for "1m", "100h" for "100s").
const (
	MinPeriod      = 100 * time.Millisecond // timeout; repeat and flap_window when set
	MaxPeriod      = 30 * 24 * time.Hour    // timeout, grace, repeat, flap_window
	MaxTags        = 32
	MaxDescription = 1024 // bytes
)

// ErrBadDefinition is returned for a definition the state machine refuses.
var ErrBadDefinition = errors.New("fsm: bad definition")

// Check reports a definition whose numbers the state machine cannot use.
// Operator-facing limits (minimum timeouts, known actions) are checked
// where the definition is written: the config file and the API.
func (d *Definition) Check() error {
	if err := d.checkSchedule(); err != nil {
		return err
	}
	switch {
	case d.Timeout <= 0 && !d.scheduled():
		return fmt.Errorf("%w: timeout must be positive", ErrBadDefinition)
	case d.Grace < 0 || d.Repeat < 0 || d.FlapWindow < 0:
		return fmt.Errorf("%w: grace, repeat and flap_window must not be negative", ErrBadDefinition)
	case d.MaxRepeats < 0 || d.MaxRepeats > MaxMaxRepeats:
		return fmt.Errorf("%w: max_repeats must be 0 (no limit) to %d", ErrBadDefinition, MaxMaxRepeats)
	case d.FlapThreshold < 0 || d.FlapThreshold > MaxFlapThreshold:
		return fmt.Errorf("%w: flap_threshold must be 0 (off) to %d", ErrBadDefinition, MaxFlapThreshold)
	case d.FlapThreshold > 0 && d.FlapWindow == 0:
		return fmt.Errorf("%w: flap_threshold needs a flap_window", ErrBadDefinition)
	}
	return nil
}

// DefaultDefinition is used for services first seen by a heartbeat until the
// cluster has committed the operator's configured defaults.
func DefaultDefinition() *Definition {
	return &Definition{Timeout: 10 * time.Second, Actions: []string{"log"}}
}

// nanoseconds from the clock of the leader that proposed the change.
type Service struct {
	ID     string      `json:"id"`
	Def    *Definition `json:"def"`
	Source Source      `json:"source,omitempty"` // where Def comes from
	// New is set on a service defined (config file or API) before anything
	// was heard from it, and cleared by its first heartbeat, success or
	// failure ping, or incident. It changes nothing of how it is watched:
	// only what it is shown as (StatusNew). Absent from older snapshots,
	// where it reads as false: shown as up, as those builds did.
	New      bool   `json:"new,omitempty"`
	Status   Status `json:"status"`
	LastSeen int64  `json:"last_seen"`
	// PausedUntil, on a paused service, is when its maintenance window
	// ends and the leader resumes it (Unix ns); 0 pauses until resumed.
	PausedUntil int64 `json:"paused_until,omitempty"`
	// Incidents holds the most recent incidents, oldest first. The slice is
	// never changed in place once stored, so copies handed to readers and
	// snapshots may share it.
	Incidents []Incident `json:"incidents,omitempty"`
	// Started is when a start ping opened a run of a scheduled service,
	// 0 when none is open: the run must end within its grace.
	Started int64 `json:"started,omitempty"`

	heapIdx int   // position in the deadline heap, -1 when not in it
	due     int64 // computeDue, as of its last move in the heap
}

// Incident is one period a service spent down, and what was done about it.
type Incident struct {
	ID       string      `json:"id"`
	Opened   int64       `json:"opened"`
	LastSeen int64       `json:"last_seen"` // the heartbeat the service went silent after
	Resolved int64       `json:"resolved,omitempty"`
	Actions  []ActionRun `json:"actions,omitempty"`
	// Flapping is set while the service flaps: the incident then stays
	// open across its ups and downs, Changed is the time of the latest,
	// and no action runs until it has been stable for its flap window.
	Flapping bool  `json:"flapping,omitempty"`
	Changed  int64 `json:"changed,omitempty"`
	// Notified is when the down actions were last owed (the open, the end
	// of flapping, a repeat): the next repeat is counted from it. Repeats
	// is how many repeats have been owed.
	Notified int64 `json:"notified,omitempty"`
	Repeats  int   `json:"repeats,omitempty"`
	// Reason says why it went down (ReasonTimeout, ReasonFail or
	// ReasonExitStatus, with ExitStatus); while it flaps, why it went down
	// last. Empty in incidents opened by builds that did not record it.
	Reason     string `json:"reason,omitempty"`
	ExitStatus int    `json:"exit_status,omitempty"`
	// Note is the note of the ping that took it down, or for a timeout of
	// the ping that was its last contact; RecoveryNote that of the ping
	// that resolved it. Both are cleaned and bounded (MaxIncidentNote).
	Note         string `json:"note,omitempty"`
	RecoveryNote string `json:"recovery_note,omitempty"`
	// SuppressedBy is the service this one depends on that was down when
	// the incident opened (or, later, the one it still waits for): its
	// actions wait until Released, when no dependency is down any more.
	SuppressedBy string `json:"suppressed_by,omitempty"`
	Released     int64  `json:"released,omitempty"`
}

// ActionRun is one action owed or done for an incident's event.
type ActionRun struct {
	Action   string      `json:"action"`
	Event    Event       `json:"event"`
	Repeat   int         `json:"repeat,omitempty"` // which repeat, for EventRepeat
	Owed     int64       `json:"owed,omitempty"`   // when the event happened that owes it
	State    ActionState `json:"state"`
	Attempts int         `json:"attempts,omitempty"`
	Error    string      `json:"error,omitempty"`
	Finished int64       `json:"finished,omitempty"`
}

// Shown is the status to show: Status, or StatusNew for an up service
// never heard from. Deciding anything on it is for display alone; the
// watcher and the state machine go by Status.
func (s *Service) Shown() Status {
	if s.New && s.Status == StatusUp {
		return StatusNew
	}
	return s.Status
}

// Flapping reports whether the service is flapping now: its open incident
// holds its notifications until it is stable again.
func (s *Service) Flapping() bool {
	cur := s.Current()
	return cur != nil && cur.Resolved == 0 && cur.Flapping
}

// Current returns the service's latest incident, or nil when it never had one.
func (s *Service) Current() *Incident {
	if len(s.Incidents) == 0 {
		return nil
	}
	return &s.Incidents[len(s.Incidents)-1]
}

// Deadline is when the service is overdue, its timeout and grace after its
// last heartbeat, given that the watcher has been able to see heartbeats
// only since watchingSince (the moment its node became leader): while there
// was no leader, no heartbeat could be committed, so a stale timestamp then
// is nobody's fault.
func (s *Service) Deadline(watchingSince time.Time) time.Time {
	if s.Def.scheduled() {
		// A tick is an instant, not a silence: the floor is a full
		// grace to be heard from once this leader can commit it.
		return time.Unix(0, max(s.computeDue(), watchingSince.Add(s.Def.Grace).UnixNano()))
	}
	last := time.Unix(0, s.LastSeen)
	if last.Before(watchingSince) {
		last = watchingSince
	}
	return last.Add(s.Def.Timeout + s.Def.Grace)
}

// PendingAction is an action some leader still owes: the watcher runs it and
// commits its outcome.
type PendingAction struct {
	Service  string
	Incident string
	LastSeen int64
	Run      ActionRun
}

// maxIncidents bounds the history kept per service; unfinished incidents
// (with actions pending) are never dropped.
const maxIncidents = 10
