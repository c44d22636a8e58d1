package watcher

import (
	"context"
	"reflect"
	"testing"

	"github.com/watchdog-ha/watchdog/fsm"
)

func TestPagerDutyTriggerAndResolve(t *testing.T) {
	r := newReceiver(t, reply{status: 202, body: `{"status":"success","dedup_key":"12-0"}`})
	pd := PagerDuty{RoutingKey: "R0UT1NGKEY", URL: r.URL + "/v2/enqueue"}
	down := testEvent()
	if err := pd.Run(context.Background(), down); err != nil {
		t.Fatalf("trigger: %v", err)
	}
	up := down
	up.Kind = fsm.EventRecovered
	if err := pd.Run(context.Background(), up); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	reqs := r.requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want 2", len(reqs))
	}
	for _, req := range reqs {
		if req.Path != "/v2/enqueue" || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request = %s %v", req.Path, req.Header)
		}
	}
	var trigger, resolve PagerDutyEvent
	decodeStrict(t, reqs[0].Body, &trigger)
	decodeStrict(t, reqs[1].Body, &resolve)
	wantTrigger := PagerDutyEvent{
		RoutingKey: "R0UT1NGKEY", EventAction: "trigger", DedupKey: "12-0", Client: "watchdog",
		Payload: &PagerDutyPayload{
			Summary:   "worker-1 is DOWN: no heartbeat since 2026-11-25T10:00:00Z (timeout 30s)",
			Source:    "worker-1",
			Severity:  "critical",
			Timestamp: "2026-11-25T10:00:30.127Z",
			CustomDetails: map[string]string{
				"service": "worker-1", "event": "down", "incident_id": "12-0",
				"last_seen": "2026-11-25T10:00:00.123Z", "timeout": "30s", "node": "n2",
			},
		},
	}
	if !reflect.DeepEqual(trigger, wantTrigger) {
		t.Errorf("trigger = %+v %+v\nwant      %+v %+v", trigger, trigger.Payload, wantTrigger, wantTrigger.Payload)
	}
	wantResolve := PagerDutyEvent{RoutingKey: "R0UT1NGKEY", EventAction: "resolve", DedupKey: "12-0", Client: "watchdog"}
	if !reflect.DeepEqual(resolve, wantResolve) {
		t.Errorf("resolve = %+v, want %+v", resolve, wantResolve)
	}
}

func TestPagerDutyRepeatTriggersTheSamePage(t *testing.T) {
	ev := testEvent()
	ev.Kind = fsm.EventRepeat
	e := pagerDutyEvent("k", ev)
	if e.EventAction != "trigger" || e.DedupKey != "12-0" || e.Payload == nil {
		t.Errorf("repeat = %+v, want a trigger with the incident's dedup key", e)
	}
}

func TestPagerDutyRefusalIsPermanent(t *testing.T) {
	r := newReceiver(t, reply{status: 400, body: `{"status":"invalid event","message":"Event object is invalid"}`})
	err := PagerDuty{RoutingKey: "bad", URL: r.URL}.Run(context.Background(), testEvent())
	if err == nil || !IsPermanent(err) {
		t.Fatalf("Run = %v, want a permanent error", err)
	}
}
