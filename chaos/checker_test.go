package chaos

// Unit tests of the history checker on hand-made histories: a clean one
// passes, and each violation, planted in it, is found. These run in every
// `go test ./...`; only the cluster scenarios need WATCHDOG_CHAOS.

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// beats returns heartbeats of svc sent every 300 ms in [from, to), each
// acknowledged 10 ms later by n1.
func beats(svc string, from, to time.Duration) []Ack {
	var out []Ack
	for d := from; d < to; d += 300 * time.Millisecond {
		out = append(out, Ack{Service: svc, Node: "n1", Sent: at(d), Acked: at(d + 10*time.Millisecond)})
	}
	return out
}

// cleanHistory: "steady" (timeout 2s) beats throughout; "quiet" (timeout
// 3s) beats until 10s and goes down on n1 3.2s after its last heartbeat.
func cleanHistory() (*History, time.Time) {
	h := &History{
		Start:    t0,
		Timeout:  map[string]time.Duration{"steady": 2 * time.Second, "quiet": 3 * time.Second},
		Silenced: map[string]time.Time{"quiet": at(10 * time.Second)},
	}
	h.Acks = append(beats("steady", sec(0.5), sec(30)), beats("quiet", sec(0.5), sec(10))...)
	last := h.Acks[len(h.Acks)-1] // quiet's last
	h.Execs = []Exec{{Event: "down", Service: "quiet", Incident: "40-0", Node: "n1", At: last.Acked.Add(sec(3.2))}}
	return h, at(30 * time.Second)
}

func quietLast(h *History) Ack {
	var last Ack
	for _, a := range h.Acks {
		if a.Service == "quiet" && a.Sent.After(last.Sent) {
			last = a
		}
	}
	return last
}

// expect fails unless vs are exactly one violation per rule in rules, in
// any order, each of which mentions the matching want substring.
func expect(t *testing.T, vs []Violation, rules ...string) {
	t.Helper()
	got := map[string]int{}
	for _, v := range vs {
		got[v.Rule]++
		t.Logf("found: %s", v)
	}
	want := map[string]int{}
	for _, r := range rules {
		want[r]++
	}
	for r, n := range want {
		if got[r] != n {
			t.Errorf("want %d %q violation(s), got %d", n, r, got[r])
		}
	}
	for r, n := range got {
		if want[r] == 0 {
			t.Errorf("unexpected %d %q violation(s)", n, r)
		}
	}
}

func TestCheckerCleanHistoryPasses(t *testing.T) {
	h, now := cleanHistory()
	expect(t, Check(h, now, DefaultRules))
	seen := map[string]time.Time{"steady": at(sec(29.9)), "quiet": at(sec(9.8))}
	expect(t, CheckReplicas(h, map[string]map[string]time.Time{"n1": seen, "n2": seen, "n3": seen}, now))
}

func TestCheckerLostHeartbeat(t *testing.T) {
	h, now := cleanHistory()
	good := map[string]time.Time{"steady": at(sec(29.9)), "quiet": at(sec(9.8))}
	stale := map[string]time.Time{"steady": at(sec(20)), "quiet": at(sec(9.8))}
	expect(t, CheckReplicas(h, map[string]map[string]time.Time{"n1": good, "n2": stale, "n3": good}, now),
		RuleLostHeartbeat)
	forgot := map[string]time.Time{"steady": at(sec(29.9))}
	expect(t, CheckReplicas(h, map[string]map[string]time.Time{"n1": good, "n2": good, "n3": forgot}, now),
		RuleLostHeartbeat)
	// Heartbeats acknowledged after the replicas were read are not judged.
	expect(t, CheckReplicas(h, map[string]map[string]time.Time{"n1": stale, "n2": stale, "n3": stale}, at(sec(19))))
}

// A leader whose clock is behind stamps after the latest time committed:
// last_seen may then trail the sending time by StampLag, and no more.
func TestCheckerLostHeartbeatWithStampLag(t *testing.T) {
	h, now := cleanHistory()
	trailing := map[string]time.Time{"steady": at(sec(29.9) - 300*time.Millisecond), "quiet": at(sec(9.8))}
	replicas := map[string]map[string]time.Time{"n1": trailing, "n2": trailing, "n3": trailing}
	expect(t, CheckReplicas(h, replicas, now), RuleLostHeartbeat, RuleLostHeartbeat, RuleLostHeartbeat)
	h.StampLag = 500 * time.Millisecond
	expect(t, CheckReplicas(h, replicas, now))
	h.StampLag = 200 * time.Millisecond
	expect(t, CheckReplicas(h, replicas, now), RuleLostHeartbeat, RuleLostHeartbeat, RuleLostHeartbeat)
}

func TestCheckerFalseDeath(t *testing.T) {
	h, now := cleanHistory()
	h.Execs = append(h.Execs, Exec{Event: "down", Service: "steady", Incident: "70-0", Node: "n2", At: at(sec(20))})
	expect(t, Check(h, now, DefaultRules), RuleFalseDeath)
}

func TestCheckerDeathAfterGapInAcks(t *testing.T) {
	// The cluster answered 503 for 3s: a gap in acks longer than steady's
	// timeout, so one incident is allowed...
	h, now := cleanHistory()
	var kept []Ack
	for _, a := range h.Acks {
		if a.Service != "steady" || a.Sent.Before(at(sec(12))) || a.Sent.After(at(sec(15))) {
			kept = append(kept, a)
		}
	}
	h.Acks = kept
	h.Execs = append(h.Execs, Exec{Event: "down", Service: "steady", Incident: "70-0", Node: "n2", At: at(sec(14.5))})
	expect(t, Check(h, now, DefaultRules))
	// ...but not one that ran before the gap had lasted a timeout...
	h.Execs[len(h.Execs)-1].At = at(sec(13.5))
	expect(t, Check(h, now, DefaultRules), RuleFalseDeath)
	// ...nor a second incident in that same gap.
	h.Execs[len(h.Execs)-1].At = at(sec(14.5))
	h.Execs = append(h.Execs, Exec{Event: "down", Service: "steady", Incident: "90-0", Node: "n2", At: at(sec(16))})
	expect(t, Check(h, now, DefaultRules), RuleFalseDeath)
}

func TestCheckerTwoDeathsInOneLongGap(t *testing.T) {
	// A gap of two timeouts and more can hold two incidents (a heartbeat
	// whose 200 was lost resolved the first); one timeout and a half cannot.
	h, now := cleanHistory()
	var kept []Ack
	for _, a := range h.Acks {
		if a.Service != "steady" || a.Sent.Before(at(sec(12))) || a.Sent.After(at(sec(16.5))) {
			kept = append(kept, a)
		}
	}
	h.Acks = kept
	h.Execs = append(h.Execs,
		Exec{Event: "down", Service: "steady", Incident: "70-0", Node: "n2", At: at(sec(14))},
		Exec{Event: "down", Service: "steady", Incident: "90-0", Node: "n2", At: at(sec(16.3))})
	expect(t, Check(h, now, DefaultRules))
	h.Acks = append(h.Acks, Ack{Service: "steady", Node: "n1", Sent: at(sec(14.5)), Acked: at(sec(14.51))})
	expect(t, Check(h, now, DefaultRules), RuleFalseDeath)
}

func TestCheckerFalseDeathBeforeFirstHeartbeat(t *testing.T) {
	// Start to the first ack is a window too: a service whose first
	// heartbeat came within its timeout of Start cannot be down then.
	h, now := cleanHistory()
	h.Execs = append(h.Execs, Exec{Event: "down", Service: "steady", Incident: "1-0", Node: "n1", At: at(sec(1.5))})
	expect(t, Check(h, now, DefaultRules), RuleFalseDeath)
}

func TestCheckerMissedDeath(t *testing.T) {
	h, now := cleanHistory()
	h.Execs = nil
	expect(t, Check(h, now, DefaultRules), RuleMissedDeath)
	// Not judged before its timeout and slack have passed.
	expect(t, Check(h, quietLast(h).Acked.Add(3*time.Second+DefaultRules.Slack-time.Millisecond), DefaultRules))
}

func TestCheckerLateDeath(t *testing.T) {
	h, now := cleanHistory()
	h.Execs[0].At = quietLast(h).Acked.Add(sec(3 + 6))
	expect(t, Check(h, now, DefaultRules), RuleLateDeath)
	// A per-service slack (a fault that delays detection) allows it.
	h.Slack = map[string]time.Duration{"quiet": 7 * time.Second}
	expect(t, Check(h, now, DefaultRules))
	// So does a new leader after the last heartbeat: it gives the service
	// a full timeout from its takeover...
	h.Slack = nil
	h.Takeovers = []Takeover{{Node: "n2", At: quietLast(h).Acked.Add(sec(2.5))}}
	expect(t, Check(h, now, DefaultRules))
	// ...but not one before the heartbeat.
	h.Takeovers[0].At = quietLast(h).Sent.Add(-time.Second)
	expect(t, Check(h, now, DefaultRules), RuleLateDeath)
}

func TestCheckerDeathOnlyInMinority(t *testing.T) {
	h, now := cleanHistory()
	down := h.Execs[0].At
	h.Faults = []Fault{{Kind: "isolated", Node: "n1", From: down.Add(-5 * time.Second), To: down.Add(time.Second), Minority: true}}
	expect(t, Check(h, now, DefaultRules), RuleMissedDeath, RuleMinority)
}

func TestCheckerMinorityAction(t *testing.T) {
	// n3, cut off, runs the incident again after n1 ran it: both rules.
	h, now := cleanHistory()
	down := h.Execs[0].At
	h.Execs = append(h.Execs, Exec{Event: "down", Service: "quiet", Incident: "40-0", Node: "n3", At: down.Add(500 * time.Millisecond)})
	h.Faults = []Fault{{Kind: "isolated", Node: "n3", From: down.Add(-4 * time.Second), To: down.Add(time.Second), Minority: true}}
	vs := Check(h, now, DefaultRules)
	expect(t, vs, RuleMinority, RuleDoubleAction)
	for _, v := range vs {
		if v.Rule == RuleMinority && !strings.Contains(v.Detail, "n3 ran") {
			t.Errorf("violation should name n3: %s", v)
		}
	}
}

func TestCheckerMinorityGrace(t *testing.T) {
	// An action run within the grace after the cut is not counted: its
	// leadership may have been confirmed just before.
	h, now := cleanHistory()
	down := h.Execs[0].At
	h.Faults = []Fault{{Kind: "isolated", Node: "n1", From: down.Add(-100 * time.Millisecond), To: down.Add(5 * time.Second), Minority: true}}
	expect(t, Check(h, now, DefaultRules))
	h.Faults[0].From = down.Add(-DefaultRules.MinorityGrace - time.Millisecond)
	expect(t, Check(h, now, DefaultRules), RuleMinority, RuleMissedDeath)
}

func TestCheckerDoubleAction(t *testing.T) {
	h, now := cleanHistory()
	first := h.Execs[0]
	again := first
	again.Node, again.At = "n2", first.At.Add(1500*time.Millisecond)
	h.Execs = append(h.Execs, again)
	expect(t, Check(h, now, DefaultRules), RuleDoubleAction)

	// Allowed when n1 was killed right after running it...
	h.Faults = []Fault{{Kind: "kill -9", Node: "n1", From: first.At.Add(50 * time.Millisecond), To: first.At.Add(50 * time.Millisecond)}}
	expect(t, Check(h, now, DefaultRules))
	// ...but not a killing long after...
	h.Faults[0].From, h.Faults[0].To = first.At.Add(10*time.Second), first.At.Add(10*time.Second)
	expect(t, Check(h, now, DefaultRules), RuleDoubleAction)
	// ...nor a third run even then.
	h.Faults[0].From, h.Faults[0].To = first.At, first.At
	third := again
	third.Node, third.At = "n3", again.At.Add(time.Second)
	h.Execs = append(h.Execs, third)
	expect(t, Check(h, now, DefaultRules), RuleDoubleAction)
}

func TestCheckerRecoveredTwice(t *testing.T) {
	h, now := cleanHistory()
	rec := Exec{Event: "recovered", Service: "quiet", Incident: "40-0", Node: "n1", At: at(sec(20))}
	h.Execs = append(h.Execs, rec, rec)
	expect(t, Check(h, now, DefaultRules), RuleDoubleAction)
}

func TestParseActionLine(t *testing.T) {
	e, err := ParseActionLine("down svc-1 12-0 n2 1764064800123456789")
	if err != nil {
		t.Fatal(err)
	}
	want := Exec{Event: "down", Service: "svc-1", Incident: "12-0", Node: "n2", At: time.Unix(0, 1764064800123456789)}
	if e != want {
		t.Errorf("got %+v, want %+v", e, want)
	}
	for _, bad := range []string{"", "down svc 1-0 n1", "down svc 1-0 n1 soon", "down svc 1-0 n1 -5", "a b c d e f"} {
		if _, err := ParseActionLine(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// TestCheckSavedHistory re-checks the history.json a chaos run kept:
// WATCHDOG_CHAOS_HISTORY=/tmp/watchdog-chaos-.../history.json go test -run TestCheckSavedHistory -v ./chaos/
func TestCheckSavedHistory(t *testing.T) {
	path := os.Getenv("WATCHDOG_CHAOS_HISTORY")
	if path == "" {
		t.Skip("set WATCHDOG_CHAOS_HISTORY to the history.json of a chaos run")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var h History
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	var end time.Time
	for _, a := range h.Acks {
		if a.Acked.After(end) {
			end = a.Acked
		}
	}
	for _, e := range h.Execs {
		if e.At.After(end) {
			end = e.At
		}
	}
	for _, v := range Check(&h, end, DefaultRules) {
		t.Errorf("%s", v)
	}
}
