package watcher

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

func TestSlackDownMessage(t *testing.T) {
	r := newReceiver(t, reply{status: 200, body: "ok"})
	ev := testEvent()
	now := ev.LastSeen.Add(35 * time.Second)
	s := Slack{URL: Secret(r.URL + "/services/T0/B0/XXXX"), Now: func() time.Time { return now }}
	if err := s.Run(context.Background(), ev); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := r.only(t)
	if got.Path != "/services/T0/B0/XXXX" || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request = %s %v", got.Path, got.Header)
	}
	var m SlackMessage
	decodeStrict(t, got.Body, &m)
	wantText := ":red_circle: *worker-1* is DOWN — last heartbeat 2026-11-25T10:00:00Z (35s ago), timeout 30s, incident 12-0"
	if m.Text != wantText {
		t.Errorf("text = %q\nwant   %q", m.Text, wantText)
	}
	want := []SlackAttachment{{
		Color: slackRed, Fallback: wantText, Footer: "watchdog", TS: ev.Time.Unix(),
		Fields: []SlackField{
			{"Service", "worker-1", true}, {"Event", "down", true},
			{"Last heartbeat", "2026-11-25T10:00:00Z", true}, {"Timeout", "30s", true},
			{"Incident", "12-0", true}, {"Leader", "n2", true},
		},
	}}
	if !reflect.DeepEqual(m.Attachments, want) {
		t.Errorf("attachments = %+v\nwant          %+v", m.Attachments, want)
	}
}

func TestSlackRecoveredMessage(t *testing.T) {
	r := newReceiver(t)
	ev := testEvent()
	ev.Kind = fsm.EventRecovered
	ev.Time = ev.LastSeen.Add(2*time.Minute + 5*time.Second)
	if err := (Slack{URL: Secret(r.URL)}).Run(context.Background(), ev); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var m SlackMessage
	decodeStrict(t, r.only(t).Body, &m)
	want := ":large_green_circle: *worker-1* is UP again — heartbeat after 2m5s of silence, incident 12-0"
	if m.Text != want || m.Attachments[0].Color != slackGreen {
		t.Errorf("text = %q color %s\nwant   %q green", m.Text, m.Attachments[0].Color, want)
	}
}

func TestSlackEscapesMarkup(t *testing.T) {
	ev := testEvent()
	ev.Service = "a<!channel>&b"
	m := slackMessage(ev, ev.Time)
	if want := "*a&lt;!channel&gt;&amp;b*"; !strings.Contains(m.Text, want) {
		t.Errorf("text = %q, want the id escaped as %q", m.Text, want)
	}
}
