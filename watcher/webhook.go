package watcher

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// Webhook POSTs the event as JSON to a URL of the operator's choosing.
type Webhook struct {
	URL string
	// Header is sent with every delivery; its values may be credentials.
	// Content-Type, User-Agent and Idempotency-Key are always ours.
	Header map[string]Secret
	Client *http.Client // nil: a client that does not follow redirects
	Policy RetryPolicy
}

// WebhookPayload is the body a webhook receives.
type WebhookPayload struct {
	Service    string `json:"service"`
	Event      string `json:"event"`            // down, recovered, repeat or flapping
	Repeat     int    `json:"repeat,omitempty"` // which repeat, for event repeat
	IncidentID string `json:"incident_id"`
	LastSeen   string `json:"last_seen"` // RFC 3339, UTC: the heartbeat the service went silent after
	Timeout    string `json:"timeout"`   // Go duration string
	Node       string `json:"node"`      // the leader that delivered it
	Time       string `json:"time"`      // RFC 3339, UTC: when the event happened
	// Why it went down: timeout, fail or exit_status (with exit_status);
	// absent for an incident opened by a build that did not record it.
	Reason     string `json:"reason,omitempty"`
	ExitStatus int    `json:"exit_status,omitempty"`
	Note       string `json:"note,omitempty"`       // of the ping that took it down, or its last contact
	DownSince  string `json:"down_since,omitempty"` // RFC 3339, UTC: when the incident opened
	DownFor    string `json:"down_for,omitempty"`   // Go duration: down so far; for recovered, the downtime
	// For recovered: the heartbeat that resolved it, and its note if it
	// was a ping with one.
	RecoveredAt  string `json:"recovered_at,omitempty"`
	RecoveryNote string `json:"recovery_note,omitempty"`
}

// IdempotencyKey is the same for every delivery of one event of one
// incident, by whichever leader, so a receiver can drop duplicates. Each
// repeat is an event of its own ("repeat-2"), so it is not dropped as one.
func IdempotencyKey(ev Event) string { return ev.Incident + ":" + eventTag(ev) }

// eventTag names an event uniquely within its incident.
func eventTag(ev Event) string {
	if ev.Kind == fsm.EventRepeat {
		return fmt.Sprintf("%s-%d", ev.Kind, ev.Repeat)
	}
	return string(ev.Kind)
}

// RetryPolicy implements the watcher's retry hook.
func (w Webhook) RetryPolicy() RetryPolicy { return w.Policy }

// Run implements Action: one attempt.
func (w Webhook) Run(ctx context.Context, ev Event) error {
	h := make(http.Header, len(w.Header)+1)
	for k, v := range w.Header {
		h.Set(k, string(v))
	}
	h.Set("Idempotency-Key", IdempotencyKey(ev))
	return postJSON(ctx, w.Client, w.URL, h, webhookPayload(ev))
}

func webhookPayload(ev Event) WebhookPayload {
	p := WebhookPayload{
		Service:    ev.Service,
		Event:      string(ev.Kind),
		Repeat:     ev.Repeat,
		IncidentID: ev.Incident,
		LastSeen:   stampNano(ev.LastSeen),
		Timeout:    ev.Timeout.String(),
		Node:       ev.Node,
		Time:       stampNano(ev.Time),
		Reason:     ev.Reason,
		ExitStatus: ev.ExitStatus,
		Note:       ev.Note,
	}
	if !ev.DownSince.IsZero() {
		p.DownSince, p.DownFor = stampNano(ev.DownSince), ev.DownFor().String()
	}
	if ev.Kind == fsm.EventRecovered {
		p.RecoveredAt, p.RecoveryNote = stampNano(ev.Time), ev.RecoveryNote
	}
	return p
}

// stampNano keeps sub-second precision for machines, as the HTTP API does.
func stampNano(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
