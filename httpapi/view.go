package httpapi

import (
	"cmp"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// serviceView is a service as the API shows it: durations as Go duration
// strings, times as RFC 3339 in UTC.
type serviceView struct {
	ID          string     `json:"id"`
	Source      fsm.Source `json:"source"` // config, api or heartbeat
	Status      fsm.Status `json:"status"`
	Flapping    bool       `json:"flapping"`
	LastSeen    *time.Time `json:"last_seen"`
	Timeout     string     `json:"timeout,omitempty"` // absent for a scheduled service
	Actions     []string   `json:"actions"`
	OnRecovered []string   `json:"on_recovered"`
	policyView
	// Schedule and TZ instead of Timeout; DependsOn; WaitsFor is the
	// dependency an open suppressed incident waits for.
	Schedule     string         `json:"schedule,omitempty"`
	TZ           string         `json:"tz,omitempty"`
	DependsOn    []string       `json:"depends_on,omitempty"`
	WaitsFor     string         `json:"waits_for,omitempty"`
	NextDeadline *time.Time     `json:"next_deadline,omitempty"`
	Incident     *incidentView  `json:"incident"`
	Incidents    []incidentView `json:"incidents,omitempty"`

	// PausedUntil is when a paused service's maintenance window ends.
	PausedUntil *time.Time `json:"paused_until,omitempty"`
	// Timeline and Uptime: see uptime.go.
	Timeline string      `json:"timeline,omitempty"`
	Uptime   *uptimeView `json:"uptime,omitempty"`
}

type incidentView struct {
	ID       string     `json:"id"`
	Opened   *time.Time `json:"opened"`
	LastSeen *time.Time `json:"last_seen"`
	Resolved *time.Time `json:"resolved"`
	// Why it opened: timeout, fail or exit_status (with exit_status);
	// absent for incidents opened before reasons were recorded.
	Reason       string          `json:"reason,omitempty"`
	ExitStatus   int             `json:"exit_status,omitempty"`
	Note         string          `json:"note,omitempty"`
	RecoveryNote string          `json:"recovery_note,omitempty"`
	SuppressedBy string          `json:"suppressed_by,omitempty"`
	Released     *time.Time      `json:"released,omitempty"`
	Actions      []actionRunView `json:"actions"`
}

type actionRunView struct {
	Action   string          `json:"action"`
	Event    fsm.Event       `json:"event"`
	State    fsm.ActionState `json:"state"`
	Attempts int             `json:"attempts"`
	Error    string          `json:"error,omitempty"`
	Finished *time.Time      `json:"finished,omitempty"`
}

// policyView is the rest of a definition, shown only where set.
type policyView struct {
	Grace         string   `json:"grace,omitempty"`
	Repeat        string   `json:"repeat,omitempty"`
	MaxRepeats    int      `json:"max_repeats,omitempty"`
	FlapThreshold int      `json:"flap_threshold,omitempty"`
	FlapWindow    string   `json:"flap_window,omitempty"`
	Tags          []string `json:"tags,omitempty"`
	Description   string   `json:"description,omitempty"`
}

func policyOf(d *fsm.Definition) policyView {
	return policyView{Grace: durationOf(d.Grace), Repeat: durationOf(d.Repeat), MaxRepeats: d.MaxRepeats,
		FlapThreshold: d.FlapThreshold, FlapWindow: durationOf(d.FlapWindow), Tags: d.Tags, Description: d.Description}
}

func durationOf(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func viewOf(s fsm.Service, history bool) serviceView {
	v := serviceView{
		ID:          s.ID,
		Source:      s.Source,
		Status:      s.Shown(),
		Flapping:    s.Flapping(),
		LastSeen:    timeOf(s.LastSeen),
		Timeout:     durationOf(s.Def.Timeout),
		Actions:     nonNil(s.Def.Actions),
		OnRecovered: nonNil(s.Def.OnRecovered),
		policyView:  policyOf(s.Def),
		Schedule:    s.Def.Schedule,
		DependsOn:   s.Def.DependsOn,
		WaitsFor:    s.WaitsFor(),
	}
	if s.Def.Schedule != "" {
		v.TZ = cmp.Or(s.Def.TZ, fsm.DefaultTZ)
	}
	if s.New {
		// Never heard from: the time it is watched from is its
		// definition's, not a heartbeat's.
		v.LastSeen = nil
	}
	if d := s.NextDeadline(); !d.IsZero() {
		v.NextDeadline = timeOf(d.UnixNano())
	}
	if s.Status == fsm.StatusPaused {
		v.PausedUntil = timeOf(s.PausedUntil)
	}
	if cur := s.Current(); cur != nil {
		iv := incidentOf(*cur)
		v.Incident = &iv
	}
	if history {
		v.Incidents = make([]incidentView, 0, len(s.Incidents))
		for i := len(s.Incidents) - 1; i >= 0; i-- {
			v.Incidents = append(v.Incidents, incidentOf(s.Incidents[i]))
		}
	}
	return v
}

func incidentOf(inc fsm.Incident) incidentView {
	iv := incidentView{ID: inc.ID, Opened: timeOf(inc.Opened), LastSeen: timeOf(inc.LastSeen),
		Resolved: timeOf(inc.Resolved), Reason: inc.Reason, ExitStatus: inc.ExitStatus, Note: inc.Note,
		RecoveryNote: inc.RecoveryNote, SuppressedBy: inc.SuppressedBy, Released: timeOf(inc.Released),
		Actions: make([]actionRunView, 0, len(inc.Actions))}
	for _, r := range inc.Actions {
		iv.Actions = append(iv.Actions, actionRunView{Action: r.Action, Event: r.Event, State: r.State,
			Attempts: r.Attempts, Error: r.Error, Finished: timeOf(r.Finished)})
	}
	return iv
}

// timeOf turns Unix nanoseconds into a UTC time; zero means "never" (null).
func timeOf(ns int64) *time.Time {
	if ns == 0 {
		return nil
	}
	t := time.Unix(0, ns).UTC()
	return &t
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
