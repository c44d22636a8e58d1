package watcher

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/watchdog-ha/watchdog/fsm"
)

// DefaultPagerDutyURL is the Events API v2 endpoint.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// PagerDuty opens a page when a service goes down and resolves it when the
// service recovers. The incident id is the dedup key, so a delivery
// repeated by a new leader lands on the same page, and the recovery closes it.
type PagerDuty struct {
	RoutingKey Secret
	URL        string // empty: DefaultPagerDutyURL
	Client     *http.Client
	Policy     RetryPolicy
}

// PagerDutyEvent is an Events API v2 event.
type PagerDutyEvent struct {
	RoutingKey  string            `json:"routing_key"`
	EventAction string            `json:"event_action"` // trigger or resolve
	DedupKey    string            `json:"dedup_key"`
	Payload     *PagerDutyPayload `json:"payload,omitempty"` // trigger only
	Client      string            `json:"client,omitempty"`
}

// PagerDutyPayload describes what is wrong, for a trigger.
type PagerDutyPayload struct {
	Summary       string            `json:"summary"`
	Source        string            `json:"source"`
	Severity      string            `json:"severity"`
	Timestamp     string            `json:"timestamp"`
	CustomDetails map[string]string `json:"custom_details"`
}

// RetryPolicy implements the watcher's retry hook.
func (p PagerDuty) RetryPolicy() RetryPolicy { return p.Policy }

// Run implements Action: one attempt. PagerDuty answers 202 when it has
// accepted the event; 400 means the event itself is wrong (never retried).
func (p PagerDuty) Run(ctx context.Context, ev Event) error {
	target := p.URL
	if target == "" {
		target = DefaultPagerDutyURL
	}
	return postJSON(ctx, p.Client, target, nil, pagerDutyEvent(string(p.RoutingKey), ev))
}

func pagerDutyEvent(key string, ev Event) PagerDutyEvent {
	out := PagerDutyEvent{RoutingKey: key, DedupKey: ev.Incident, Client: userAgent}
	if ev.Kind == fsm.EventRecovered {
		out.EventAction = "resolve"
		return out
	}
	out.EventAction = "trigger"
	summary := fmt.Sprintf("%s is DOWN: no heartbeat since %s (%s)", ev.Service, stamp(ev.LastSeen), limit(ev))
	if ev.Reason == fsm.ReasonFail || ev.Reason == fsm.ReasonExitStatus {
		summary = fmt.Sprintf("%s is DOWN: %s", ev.Service, why(ev))
	}
	switch ev.Kind {
	case fsm.EventRepeat:
		summary = strings.Replace(summary, " is DOWN", " is still DOWN", 1)
	case fsm.EventFlapping:
		summary = fmt.Sprintf("%s is FLAPPING: down again at %s (%s); held until stable", ev.Service, stamp(ev.Time), limit(ev))
	}
	details := map[string]string{
		"service":     ev.Service,
		"event":       string(ev.Kind),
		"incident_id": ev.Incident,
		"last_seen":   stampNano(ev.LastSeen),
		"timeout":     ev.Timeout.String(),
		"node":        ev.Node,
	}
	for k, v := range map[string]string{"reason": ev.Reason, "note": ev.Note} {
		if v != "" {
			details[k] = v
		}
	}
	if ev.Reason == fsm.ReasonExitStatus {
		details["exit_status"] = strconv.Itoa(ev.ExitStatus)
	}
	if !ev.DownSince.IsZero() {
		details["down_since"], details["down_for"] = stampNano(ev.DownSince), ev.DownFor().String()
	}
	out.Payload = &PagerDutyPayload{
		Summary:       summary,
		Source:        ev.Service,
		Severity:      "critical",
		Timestamp:     stampNano(ev.Time),
		CustomDetails: details,
	}
	return out
}
