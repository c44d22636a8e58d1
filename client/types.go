package client

import (
	"encoding/json"
	"fmt"
	"time"
)

// Status is where a service stands.
type Status string

// The statuses a node reports.
const (
	StatusUp     Status = "up"
	StatusDown   Status = "down"
	StatusPaused Status = "paused"
	// StatusNew is a service defined but never heard from: watched as one
	// that is up (it goes down after its timeout), with no LastSeen.
	StatusNew Status = "new"
)

// Service is a service as GET /v1/services and GET /v1/services/{id} show
// it. Durations, which the API writes as Go duration strings, are parsed;
// a policy field the service does not set is zero. Times are UTC; nil means
// never.
type Service struct {
	ID          string     `json:"id"`
	Source      string     `json:"source"` // config, api or heartbeat
	Status      Status     `json:"status"`
	Flapping    bool       `json:"flapping"`
	LastSeen    *time.Time `json:"last_seen"`
	Timeout     time.Duration
	Actions     []string `json:"actions"`
	OnRecovered []string `json:"on_recovered"`

	Grace         time.Duration
	Repeat        time.Duration
	MaxRepeats    int `json:"max_repeats"`
	FlapThreshold int `json:"flap_threshold"`
	FlapWindow    time.Duration
	Tags          []string `json:"tags"`
	Description   string   `json:"description"`
	// Schedule and TZ are set on a service expected once per tick of a
	// cron schedule instead of within a Timeout (which is then zero).
	Schedule  string   `json:"schedule"`
	TZ        string   `json:"tz"`
	DependsOn []string `json:"depends_on"`
	// WaitsFor is the dependency the open incident waits for, while its
	// actions are suppressed; "" otherwise.
	WaitsFor string `json:"waits_for"`

	// NextDeadline is when the service goes down without a heartbeat; nil
	// unless it is up.
	NextDeadline *time.Time `json:"next_deadline"`
	// Incident is the open incident, if any.
	Incident *Incident `json:"incident"`
	// Incidents is the history, newest first; only Client.Service fills it.
	Incidents []Incident `json:"incidents"`

	// PausedUntil is when a paused service's maintenance window ends; nil
	// when it is not paused, or paused until resumed.
	PausedUntil *time.Time `json:"paused_until"`
	// Uptime is the share of the last 24 hours, 7 days and 30 days the
	// service was up, its paused time left out; only Client.Service fills
	// it.
	Uptime *Uptime `json:"uptime"`
}

// Uptime is a service's uptime over three periods, from 0 to 1; a period
// in which it was never watched is nil.
type Uptime struct {
	Day   *float64 `json:"24h"`
	Week  *float64 `json:"7d"`
	Month *float64 `json:"30d"`
}

// Incident is one stretch of a service's silence.
type Incident struct {
	ID       string     `json:"id"`
	Opened   *time.Time `json:"opened"`
	LastSeen *time.Time `json:"last_seen"`
	Resolved *time.Time `json:"resolved"`
	// Reason says why it opened: "timeout", "fail" or "exit_status" (with
	// ExitStatus); empty for incidents opened before reasons were recorded.
	Reason     string `json:"reason"`
	ExitStatus int    `json:"exit_status"`
	// Note is what the ping that took it down said (for a timeout, its
	// last ping, if that was its last contact); RecoveryNote what the ping
	// that resolved it said.
	Note         string `json:"note"`
	RecoveryNote string `json:"recovery_note"`
	// SuppressedBy is the dependency that was down when it opened: its
	// actions waited until Released (nil while they still wait).
	SuppressedBy string      `json:"suppressed_by"`
	Released     *time.Time  `json:"released"`
	Actions      []ActionRun `json:"actions"`
}

// ActionRun is the outcome of one action of an incident.
type ActionRun struct {
	Action   string     `json:"action"`
	Event    string     `json:"event"` // down, recovered, repeat…
	State    string     `json:"state"`
	Attempts int        `json:"attempts"`
	Error    string     `json:"error"`
	Finished *time.Time `json:"finished"`
}

// UnmarshalJSON reads the API's JSON, parsing its duration strings.
func (s *Service) UnmarshalJSON(b []byte) error {
	type plain Service // without this method
	var v struct {
		plain
		Timeout    string `json:"timeout"`
		Grace      string `json:"grace"`
		Repeat     string `json:"repeat"`
		FlapWindow string `json:"flap_window"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Service(v.plain)
	for _, d := range []struct {
		name string
		in   string
		out  *time.Duration
	}{
		{"timeout", v.Timeout, &s.Timeout}, {"grace", v.Grace, &s.Grace},
		{"repeat", v.Repeat, &s.Repeat}, {"flap_window", v.FlapWindow, &s.FlapWindow},
	} {
		if d.in == "" {
			continue
		}
		p, err := time.ParseDuration(d.in)
		if err != nil {
			return fmt.Errorf("service %q: %s: %w", s.ID, d.name, err)
		}
		*d.out = p
	}
	return nil
}
