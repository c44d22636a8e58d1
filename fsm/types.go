package fsm

import (
	"slices"
	"time"
)

// Status is where a service stands as far as the watchdog is concerned.
type Status string

// The statuses a service can have.
const (
	StatusUp     Status = "up"
	StatusDown   Status = "down"
	StatusPaused Status = "paused"
)

// Event names what happened to a service, and so which actions run.
type Event string

// The events that run actions.
const (
	EventDown      Event = "down"
	EventRecovered Event = "recovered"
)

// ActionState is how far one action of an incident has got.
type ActionState string

// The states of an action run. Pending runs are what a leader still owes.
const (
	ActionPending ActionState = "pending"
	ActionDone    ActionState = "done"
	ActionFailed  ActionState = "failed"
)

// Definition is what an operator says about a service: how long it may stay
// silent and which actions run when it goes down or comes back. Definitions
// are immutable once built, so many services share one (all the services
// created with the defaults point at the same value).
type Definition struct {
	Timeout     time.Duration `json:"timeout"`
	Actions     []string      `json:"actions,omitempty"`
	OnRecovered []string      `json:"on_recovered,omitempty"`
}

// Equal reports whether two definitions say the same thing.
func (d *Definition) Equal(o *Definition) bool {
	return d.Timeout == o.Timeout && slices.Equal(d.Actions, o.Actions) &&
		slices.Equal(d.OnRecovered, o.OnRecovered)
}

// DefaultDefinition is used for services first seen by a heartbeat until the
// cluster has committed the operator's configured defaults.
func DefaultDefinition() *Definition {
	return &Definition{Timeout: 10 * time.Second, Actions: []string{"log"}}
}

// Service is the replicated record of one watched service. Times are Unix
// nanoseconds from the clock of the leader that proposed the change.
type Service struct {
	ID         string      `json:"id"`
	Def        *Definition `json:"def"`
	Configured bool        `json:"configured,omitempty"` // Def comes from the config file, not the defaults
	Status     Status      `json:"status"`
	LastSeen   int64       `json:"last_seen"`
	// Incidents holds the most recent incidents, oldest first. The slice is
	// never changed in place once stored, so copies handed to readers and
	// snapshots may share it.
	Incidents []Incident `json:"incidents,omitempty"`

	heapIdx int // position in the deadline heap, -1 when not in it
}

// Incident is one period a service spent down, and what was done about it.
type Incident struct {
	ID       string      `json:"id"`
	Opened   int64       `json:"opened"`
	LastSeen int64       `json:"last_seen"` // the heartbeat the service went silent after
	Resolved int64       `json:"resolved,omitempty"`
	Actions  []ActionRun `json:"actions,omitempty"`
}

// ActionRun is one action owed or done for an incident's event.
type ActionRun struct {
	Action   string      `json:"action"`
	Event    Event       `json:"event"`
	State    ActionState `json:"state"`
	Attempts int         `json:"attempts,omitempty"`
	Error    string      `json:"error,omitempty"`
	Finished int64       `json:"finished,omitempty"`
}

// Current returns the service's latest incident, or nil when it never had one.
func (s *Service) Current() *Incident {
	if len(s.Incidents) == 0 {
		return nil
	}
	return &s.Incidents[len(s.Incidents)-1]
}

// Deadline is when the service is overdue, given that the watcher has been
// able to see heartbeats only since watchingSince (the moment its node became
// leader): while there was no leader, no heartbeat could be committed, so a
// stale timestamp then is nobody's fault.
func (s *Service) Deadline(watchingSince time.Time) time.Time {
	last := time.Unix(0, s.LastSeen)
	if last.Before(watchingSince) {
		last = watchingSince
	}
	return last.Add(s.Def.Timeout)
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
