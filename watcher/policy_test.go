package watcher

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// keys returns the Idempotency-Keys the receiver got, sorted.
func keys(r *receiver) []string {
	var out []string
	for _, req := range r.requests() {
		out = append(out, req.Header.Get("Idempotency-Key"))
	}
	slices.Sort(out)
	return out
}

// history returns the service's events of the given kind.
func history(f *fsm.FSM, kind fsm.Event) []fsm.Record {
	h, _ := f.Events("svc", 0)
	return slices.DeleteFunc(h, func(r fsm.Record) bool { return r.Event != kind })
}

func settledAll(t *testing.T, f *fsm.FSM) {
	t.Helper()
	waitFor(t, 15*time.Second, "every outcome to be committed", func() bool { return len(f.PendingActions()) == 0 })
}

func TestRepeatsRunTheDownActionsAgainWithBackoff(t *testing.T) {
	node, f := soloCluster(t)
	r := newReceiver(t)
	def := fsm.Definition{Timeout: 300 * time.Millisecond, Actions: []string{"hook"}, OnRecovered: []string{"hook"},
		Repeat: 200 * time.Millisecond, MaxRepeats: 3}
	watch(t, node, f, Webhook{URL: r.URL, Policy: fast(0)}, def)
	waitFor(t, 15*time.Second, "the down delivery and three repeats", func() bool { return len(r.requests()) >= 4 })
	settledAll(t, f)
	s, _ := f.Service("svc")
	inc := *s.Current()
	want := []string{inc.ID + ":down", inc.ID + ":repeat-1", inc.ID + ":repeat-2", inc.ID + ":repeat-3"}
	if got := keys(r); !slices.Equal(got, want) {
		t.Fatalf("deliveries %q, want %q", got, want)
	}
	// Each repeat waits twice as long as the one before: 200, 400, 800 ms.
	prev, gap := inc.Opened, def.Repeat
	for i, rec := range history(f, fsm.EventRepeat) {
		if took := time.Duration(rec.At - prev); rec.Repeat != i+1 || took < gap {
			t.Errorf("repeat %d came %v after the previous notification, want at least %v", rec.Repeat, took, gap)
		}
		t.Logf("repeat %d: %v after the previous notification (due after %v)", i+1, time.Duration(rec.At-prev), gap)
		prev, gap = rec.At, 2*gap
	}
	// max_repeats reached: nothing more is waiting, however long it stays down.
	if repeats, _, next := f.Due(time.Now().Add(time.Hour)); len(repeats) != 0 || !next.IsZero() {
		t.Fatalf("after max_repeats: due %v, next %v", repeats, next)
	}
	var p WebhookPayload
	last := r.requests()[3]
	decodeStrict(t, last.Body, &p)
	if p.Event != "repeat" || p.Repeat != 3 || p.IncidentID != inc.ID {
		t.Fatalf("last repeat payload %+v", p)
	}
	if n := len(history(f, fsm.EventDelivery)); n != 4 {
		t.Fatalf("history holds %d deliveries, want 4", n)
	}
}

func TestFlappingServiceNotifiesOnceThenWaitsUntilStable(t *testing.T) {
	node, f := soloCluster(t)
	r := newReceiver(t)
	def := fsm.Definition{Timeout: 200 * time.Millisecond, Actions: []string{"hook"}, OnRecovered: []string{"hook"},
		FlapThreshold: 1, FlapWindow: 2 * time.Second}
	watch(t, node, f, Webhook{URL: r.URL, Policy: fast(0)}, def)
	// Never beating, it goes down; then it comes and goes four times.
	for downs := 1; downs <= 4; downs++ {
		waitFor(t, 10*time.Second, "a down", func() bool { return len(history(f, fsm.EventDown)) == downs })
		if err := node.Heartbeat(context.Background(), "svc"); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := f.Service("svc")
	if !s.Flapping() || len(s.Incidents) != 2 {
		t.Fatalf("after four downs in quick succession: flapping %v, %d incidents", s.Flapping(), len(s.Incidents))
	}
	flap := s.Current().ID
	// It goes silent for good: once its flap window passes, it is told as down.
	waitFor(t, 15*time.Second, "the end of flapping", func() bool { return len(history(f, fsm.EventStable)) == 1 })
	settledAll(t, f)
	first := s.Incidents[0].ID
	want := []string{first + ":down", first + ":recovered", flap + ":down", flap + ":flapping"}
	slices.Sort(want)
	if got := keys(r); !slices.Equal(got, want) {
		t.Fatalf("deliveries %q, want %q: one flapping notice, the flaps held", got, want)
	}
	if s, _ := f.Service("svc"); s.Flapping() || s.Status != fsm.StatusDown || s.Current().ID != flap {
		t.Fatalf("after stable: %+v", s.Current())
	}
	if n := len(history(f, fsm.EventUp)); n != 3 {
		t.Fatalf("history holds %d ups while flapping, want 3", n)
	}
}

func TestGraceGivesExtraTimeBeforeTheIncident(t *testing.T) {
	node, f := soloCluster(t)
	r := newReceiver(t)
	def := fsm.Definition{Timeout: 200 * time.Millisecond, Grace: 400 * time.Millisecond, Actions: []string{"hook"}}
	since, _ := watch(t, node, f, Webhook{URL: r.URL, Policy: fast(0)}, def)
	inc, _ := settled(t, f, fsm.EventDown)
	silent := time.Unix(0, inc.Opened).Sub(time.Unix(0, max(inc.LastSeen, since.UnixNano())))
	t.Logf("incident opened after %v of silence (timeout 200ms + grace 400ms)", silent)
	if silent < def.Timeout+def.Grace {
		t.Fatalf("incident opened after %v of silence, before timeout and grace (%v)", silent, def.Timeout+def.Grace)
	}
}

func TestEveryRetriedAttemptIsInTheHistory(t *testing.T) {
	node, f := soloCluster(t)
	r := newReceiver(t, reply{status: 503}, reply{status: 503}, reply{status: 200})
	watch(t, node, f, Webhook{URL: r.URL, Policy: fast(3)}, svc)
	settled(t, f, fsm.EventDown)
	attempts, outcome := history(f, fsm.EventAttempt), history(f, fsm.EventDelivery)
	if len(attempts) != 2 || attempts[0].Attempts != 1 || attempts[1].Attempts != 2 || attempts[0].Error == "" {
		t.Fatalf("attempts in the history: %+v, want the two failed ones", attempts)
	}
	if len(outcome) != 1 || outcome[0].State != fsm.ActionDone || outcome[0].Attempts != 3 || outcome[0].For != fsm.EventDown {
		t.Fatalf("outcome in the history: %+v", outcome)
	}
}
