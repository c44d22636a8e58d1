package watcher

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// Slack posts to a Slack incoming webhook. Mattermost's incoming webhooks
// accept the same message: both read text and attachments (Mattermost
// ignores Slack's newer blocks, so they are not used).
type Slack struct {
	URL    Secret // the URL is the credential
	Client *http.Client
	Policy RetryPolicy
	Now    func() time.Time // for "35s ago"; nil means time.Now
}

// SlackMessage is the body of an incoming-webhook post.
type SlackMessage struct {
	Text        string            `json:"text"`
	Attachments []SlackAttachment `json:"attachments"`
}

// SlackAttachment is the coloured bar under the text, with its details.
type SlackAttachment struct {
	Color    string       `json:"color"`
	Fallback string       `json:"fallback"`
	Fields   []SlackField `json:"fields"`
	Footer   string       `json:"footer"`
	TS       int64        `json:"ts"`
}

// SlackField is one labelled value of an attachment.
type SlackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// The attachment colours: red while down, green once recovered.
const (
	slackRed   = "#d40e0d"
	slackGreen = "#2eb67d"
)

// RetryPolicy implements the watcher's retry hook.
func (s Slack) RetryPolicy() RetryPolicy { return s.Policy }

// Run implements Action: one attempt.
func (s Slack) Run(ctx context.Context, ev Event) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	return postJSON(ctx, s.Client, string(s.URL), nil, slackMessage(ev, now()), slackReasons()...)
}

// slackReasons are the answers Slack's incoming webhooks give when they
// refuse a message (Mattermost answers JSON, which is not quoted). Only
// these words are ever named in an error: nothing else of an answer is.
func slackReasons() []string {
	return []string{"invalid_payload", "invalid_token", "user_not_found", "channel_not_found",
		"channel_is_archived", "action_prohibited", "posting_to_general_channel_denied",
		"too_many_attachments", "no_service", "no_service_id", "no_team", "team_disabled",
		"no_text", "missing_text_or_fallback_or_attachments"}
}

// slackMessage says in its first line what happened, to whom, why and
// since when: that line is also what the phone's notification shows.
func slackMessage(ev Event, now time.Time) SlackMessage {
	name := "*" + slackEscape(ev.Service) + "*"
	var text, color string
	switch ev.Kind {
	case fsm.EventRecovered:
		color = slackGreen
		down := ""
		if !ev.DownSince.IsZero() {
			down = fmt.Sprintf(" after %s down", ev.DownFor().Round(time.Second))
		}
		text = fmt.Sprintf(":large_green_circle: %s is UP again%s — heartbeat after %s of silence, incident %s",
			name, down, since(ev.Time, ev.LastSeen), slackEscape(ev.Incident))
	default:
		color = slackRed
		state := "DOWN"
		switch ev.Kind {
		case fsm.EventRepeat:
			state = "still DOWN"
			if !ev.DownSince.IsZero() {
				state += " after " + ev.DownFor().Round(time.Second).String()
			}
		case fsm.EventFlapping:
			state = "FLAPPING (further notifications held until it is stable)"
		}
		if r := reasonLabel(ev); r != "" {
			state += " (" + r + ")"
		}
		text = fmt.Sprintf(":red_circle: %s is %s — last heartbeat %s (%s ago), timeout %s, incident %s",
			name, state, stamp(ev.LastSeen), since(now, ev.LastSeen), ev.Timeout, slackEscape(ev.Incident))
	}
	return SlackMessage{
		Text: text,
		Attachments: []SlackAttachment{{
			Color:    color,
			Fallback: text,
			Fields:   slackFields(ev),
			Footer:   "watchdog",
			TS:       ev.Time.Unix(),
		}},
	}
}

// slackFields are the event's details; those not known are left out.
func slackFields(ev Event) []SlackField {
	fields := []SlackField{
		{Title: "Service", Value: slackEscape(ev.Service), Short: true},
		{Title: "Event", Value: string(ev.Kind), Short: true},
		{Title: "Last heartbeat", Value: stamp(ev.LastSeen), Short: true},
		{Title: "Timeout", Value: ev.Timeout.String(), Short: true},
		{Title: "Incident", Value: slackEscape(ev.Incident), Short: true},
		{Title: "Leader", Value: slackEscape(ev.Node), Short: true},
	}
	if r := reasonLabel(ev); r != "" {
		fields = append(fields, SlackField{Title: "Reason", Value: r, Short: true})
	}
	if !ev.DownSince.IsZero() {
		title := "Down for"
		if ev.Kind == fsm.EventRecovered {
			title = "Downtime"
		}
		fields = append(fields, SlackField{Title: title, Value: ev.DownFor().Round(time.Second).String(), Short: true})
	}
	if ev.Kind == fsm.EventRecovered {
		fields = append(fields, SlackField{Title: "Recovered at", Value: stamp(ev.Time), Short: true})
	}
	if ev.Note != "" {
		fields = append(fields, SlackField{Title: "Note", Value: slackEscape(ev.Note)})
	}
	if ev.RecoveryNote != "" && ev.Kind == fsm.EventRecovered {
		fields = append(fields, SlackField{Title: "Recovery note", Value: slackEscape(ev.RecoveryNote)})
	}
	return fields
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning to
// (<...> would otherwise become a link or a mention).
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
