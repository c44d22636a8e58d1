package watcher

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
	"github.com/watchdog-ha/watchdog/fsm"
)

// soloCluster is a real one-node Raft cluster on loopback, once it leads.
func soloCluster(t *testing.T) (*cluster.Node, *fsm.FSM) {
	t.Helper()
	f := fsm.New()
	node, err := cluster.New(cluster.Config{NodeID: "solo", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:1", DataDir: t.TempDir(), BootstrapExpect: 1, FSM: f})
	if err != nil {
		t.Fatal(err)
	}
	node.Start(nil)
	t.Cleanup(func() { node.Close() })
	waitFor(t, 10*time.Second, "the node to lead", func() bool { return node.Ready() == nil && node.IsLeader() })
	return node, f
}

// watch runs a watcher on node, as its leader duty would, until the
// returned stop is called (and has waited for it) or the test ends.
func watch(t *testing.T, node *cluster.Node, f *fsm.FSM, act Action, def fsm.Definition) (since time.Time, stop func()) {
	t.Helper()
	w := New(Config{
		CheckInterval: 20 * time.Millisecond,
		Actions:       map[string]Action{"hook": act},
		Desired: &fsm.Configure{Defaults: *fsm.DefaultDefinition(),
			Services: map[string]fsm.Definition{"svc": def}},
		NodeID: "solo",
	}, f, node)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	since = time.Now()
	go func() {
		defer close(done)
		w.Run(ctx, since)
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		<-done
	})
	t.Cleanup(stop)
	return since, stop
}

// settled waits until the current incident's run of the event is no longer pending.
func settled(t *testing.T, f *fsm.FSM, event fsm.Event) (fsm.Incident, fsm.ActionRun) {
	t.Helper()
	var inc fsm.Incident
	var run fsm.ActionRun
	waitFor(t, 15*time.Second, "the "+string(event)+" delivery's outcome to be committed", func() bool {
		s, ok := f.Service("svc")
		if !ok || s.Current() == nil {
			return false
		}
		inc = *s.Current()
		for _, r := range inc.Actions {
			if r.Event == event && r.State != fsm.ActionPending {
				run = r
				return true
			}
		}
		return false
	})
	return inc, run
}

var svc = fsm.Definition{Timeout: 300 * time.Millisecond, Actions: []string{"hook"}, OnRecovered: []string{"hook"}}

func TestDeliveryRetriedUntilAcceptedIsCommitted(t *testing.T) {
	node, f := soloCluster(t)
	r := newReceiver(t, reply{status: 503}, reply{status: 503}, reply{status: 200})
	since, _ := watch(t, node, f, Webhook{URL: r.URL, Policy: fast(3)}, svc)
	inc, run := settled(t, f, fsm.EventDown)
	if run.State != fsm.ActionDone || run.Attempts != 3 || run.Error != "" || run.Finished == 0 {
		t.Fatalf("committed %+v, want done after 3 attempts", run)
	}
	reqs := r.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	deadline := time.Unix(0, max(inc.LastSeen, since.UnixNano())).Add(svc.Timeout)
	t.Logf("missed deadline to first webhook arrival: %v (incident committed %v after the deadline)",
		reqs[0].At.Sub(deadline).Round(time.Microsecond), time.Unix(0, inc.Opened).Sub(deadline).Round(time.Microsecond))
	for i, req := range reqs {
		var p WebhookPayload
		decodeStrict(t, req.Body, &p)
		want := WebhookPayload{Service: "svc", Event: "down", IncidentID: inc.ID,
			LastSeen: stampNano(time.Unix(0, inc.LastSeen)), Timeout: "300ms", Node: "solo",
			Time: stampNano(time.Unix(0, inc.Opened)), Reason: fsm.ReasonTimeout,
			DownSince: stampNano(time.Unix(0, inc.Opened)), DownFor: "0s"}
		if p != want || req.Header.Get("Idempotency-Key") != inc.ID+":down" {
			t.Errorf("attempt %d: %+v key %q\nwant       %+v key %q", i+1, p, req.Header.Get("Idempotency-Key"), want, inc.ID+":down")
		}
	}

	// The service comes back: its recovery is delivered once, by the same path.
	if err := node.Heartbeat(context.Background(), "svc"); err != nil {
		t.Fatal(err)
	}
	inc, run = settled(t, f, fsm.EventRecovered)
	if run.State != fsm.ActionDone || run.Attempts != 1 {
		t.Fatalf("recovered: committed %+v, want done in one attempt", run)
	}
	reqs = r.requests()
	var p WebhookPayload
	decodeStrict(t, reqs[len(reqs)-1].Body, &p)
	if len(reqs) != 4 || p.Event != "recovered" || p.Time != stampNano(time.Unix(0, inc.Resolved)) ||
		reqs[3].Header.Get("Idempotency-Key") != inc.ID+":recovered" {
		t.Errorf("recovery delivery: %d requests, last %+v", len(reqs), p)
	}
}

func TestRefusedDeliveryIsCommittedAsFailedAfterOneAttempt(t *testing.T) {
	node, f := soloCluster(t)
	r := newReceiver(t, reply{status: 400, body: "unknown field"})
	watch(t, node, f, Webhook{URL: r.URL, Policy: fast(3)}, svc)
	_, run := settled(t, f, fsm.EventDown)
	if run.State != fsm.ActionFailed || run.Attempts != 1 || !strings.Contains(run.Error, "400 Bad Request") ||
		strings.Contains(run.Error, "unknown field") {
		t.Fatalf("committed %+v, want failed after 1 attempt with the status, not the receiver's answer", run)
	}
	if n := len(r.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestLostLeadershipStopsRetriesAndRecordsNothing(t *testing.T) {
	node, f := soloCluster(t)
	r := newReceiver(t, reply{status: 503})
	hook := Webhook{URL: r.URL, Policy: RetryPolicy{Retries: 1000, Base: 20 * time.Millisecond, Max: 20 * time.Millisecond}}
	_, stop := watch(t, node, f, hook, svc)
	waitFor(t, 15*time.Second, "two failed attempts", func() bool { return len(r.requests()) >= 2 })
	stop() // what losing leadership does; returns once every delivery has stopped
	tried := len(r.requests())
	s, _ := f.Service("svc")
	if run := s.Current().Actions[0]; run.State != fsm.ActionPending || run.Attempts != 0 {
		t.Fatalf("after leadership ended: %+v, want it still pending with nothing recorded", run)
	}
	if tried > 1000 {
		t.Fatalf("receiver got %d requests: the retries ran to the end", tried)
	}

	// The next leader resumes the delivery and records only its own attempts.
	r.answer(reply{status: 200})
	watch(t, node, f, hook, svc)
	_, run := settled(t, f, fsm.EventDown)
	if run.State != fsm.ActionDone || run.Attempts != 1 {
		t.Fatalf("resumed: committed %+v, want done in one attempt", run)
	}
	// A request in flight when leadership ended may have been recorded
	// after tried was read: allow for that one.
	if n := len(r.requests()); n != tried+1 && n != tried+2 {
		t.Errorf("receiver got %d requests in all, want %d: %d before (maybe 1 more in flight), 1 after", n, tried+1, tried)
	}
}
