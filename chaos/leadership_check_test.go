package chaos

// Unit tests of the random schedules' plan and of the rules they add to
// the checker, on hand-made histories. These run in every `go test ./...`.

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPlanScheduleIsTheSameForTheSameSeedAndIndex(t *testing.T) {
	a, b := planSchedule(123, 4), planSchedule(123, 4)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two plans of seed 123, schedule 4 differ:%s\n---%s", a, b)
	}
	if reflect.DeepEqual(a.Episodes, planSchedule(123, 5).Episodes) || reflect.DeepEqual(a.Episodes, planSchedule(124, 4).Episodes) {
		t.Fatal("another index or seed drew the same schedule")
	}
}

func TestPlanScheduleDrawsEveryFaultWithinBounds(t *testing.T) {
	kinds := map[string]bool{}
	for i := range 200 {
		s := planSchedule(7, i)
		var total time.Duration
		for _, e := range s.Episodes {
			kinds[e.Kind] = true
			span := e.Hold + e.Tail
			total += span
			if e.Hold < 2*time.Second || e.Hold > 6*time.Second || e.Silence >= span {
				t.Errorf("schedule %d: episode out of bounds: %s", i, e)
			}
			for _, c := range e.Conds {
				kinds[c.Kind] = true
				if c.Start+c.Hold > span || c.Hold < time.Second {
					t.Errorf("schedule %d: condition outside its episode: %s", i, c)
				}
			}
		}
		if total < faultSpan || total > faultSpan+8*time.Second {
			t.Errorf("schedule %d: %v of faults", i, total)
		}
	}
	for _, k := range append(append([]string{}, mainFaults...), condKinds...) {
		if !kinds[k] {
			t.Errorf("200 schedules never drew %q", k)
		}
	}
}

func TestStampTermsFollowTheClockOfTheLeaderThatTookOver(t *testing.T) {
	acks := beats("s", sec(0), sec(30))
	takeovers := []Takeover{{"n1", at(sec(1))}, {"n2", at(sec(10))}, {"n3", at(sec(20))}}
	// n2 an hour ahead when it takes over, n3 a minute behind.
	clocks := []clockChange{{"n2", at(sec(8)), time.Hour}, {"n3", at(sec(15)), -time.Minute}}
	terms := stampTerms(takeovers, clocks, acks)
	if terms[0].Floor != 0 || terms[1].Floor != time.Hour {
		t.Fatalf("floors %v, want 0 then 1h", terms)
	}
	// n3 goes on from the latest stamp (an hour ahead), less the failover.
	if f := terms[2].Floor; f > time.Hour || f < time.Hour-4*time.Second {
		t.Fatalf("n3's floor %v, want just under 1h", f)
	}
	h := &History{Start: t0, Terms: terms, Timeout: map[string]time.Duration{"s": 2 * time.Second}, Acks: acks}
	a := acks[len(acks)-1]
	ok := map[string]map[string]time.Time{"n1": {"s": a.Sent.Add(time.Hour)}}
	if vs := CheckReplicas(h, ok, at(sec(31))); len(vs) != 0 {
		t.Fatalf("a last_seen an hour ahead is what n2's leadership stamps: %v", vs)
	}
	// The stamps an hour ahead: a last_seen at the sending time is an
	// hour behind what the heartbeat stamped: lost.
	lost := map[string]map[string]time.Time{"n1": {"s": a.Sent}}
	expect(t, CheckReplicas(h, lost, at(sec(31))), RuleLostHeartbeat)
}

func TestStampTermsAllowTheFailoverOfALeaderBehind(t *testing.T) {
	acks := append(beats("s", sec(0), sec(10)), beats("s", sec(12), sec(20))...)
	takeovers := []Takeover{{"n1", at(sec(1))}, {"n2", at(sec(11.5))}}
	clocks := []clockChange{{"n2", at(sec(5)), -time.Hour}}
	terms := stampTerms(takeovers, clocks, acks)
	// From the last heartbeat acknowledged a second before the takeover
	// was seen (sent at 9.9 s) to two seconds after it (13.5 s).
	if f := terms[1].Floor; f != -3600*time.Millisecond {
		t.Fatalf("floor %v: want -3.6s", f)
	}
	h := &History{Start: t0, Terms: terms, Acks: acks}
	a := acks[len(acks)-1]
	within := map[string]map[string]time.Time{"n1": {"s": a.Sent.Add(-2 * time.Second)}}
	if vs := CheckReplicas(h, within, at(sec(21))); len(vs) != 0 {
		t.Fatalf("trailing by less than the failover: %v", vs)
	}
	beyond := map[string]map[string]time.Time{"n1": {"s": a.Sent.Add(-5 * time.Second)}}
	expect(t, CheckReplicas(h, beyond, at(sec(21))), RuleLostHeartbeat)
}

func TestStaleLeaderActionIsFound(t *testing.T) {
	h, _ := cleanHistory()
	h.Leaderships = []Takeover{{"n1", at(sec(1))}, {"n2", at(sec(12))}}
	down := h.Execs[0] // on n1 at about 13.2 s: n2 was named leader at 12 s
	expect(t, CheckLeadership(h, DefaultRules), RuleStaleLeader)

	h.Leaderships = append(h.Leaderships, Takeover{"n1", down.At.Add(300 * time.Millisecond)})
	expect(t, CheckLeadership(h, DefaultRules)) // named again a poll later

	h.Leaderships = h.Leaderships[:2]
	h.Faults = []Fault{{Kind: "SIGSTOP", Node: "n1", From: at(sec(11)), To: down.At.Add(-time.Second)}}
	expect(t, CheckLeadership(h, DefaultRules)) // frozen between its check and the action
}

func TestDuplicateNeedsALeaderChange(t *testing.T) {
	h, _ := cleanHistory()
	first := h.Execs[0]
	again := first
	again.Node, again.At = "n2", first.At.Add(2*time.Second)
	h.Execs = append(h.Execs, again)
	expect(t, CheckLeadership(h, DefaultRules), RuleDuplicate)

	h.Takeovers = []Takeover{{"n2", first.At.Add(time.Second)}}
	expect(t, CheckLeadership(h, DefaultRules))

	third := again
	third.At = again.At.Add(time.Second)
	h.Execs = append(h.Execs, third)
	expect(t, CheckLeadership(h, DefaultRules), RuleDuplicate)
}

func TestReplicasEqual(t *testing.T) {
	a := []byte(`{"services":[{"id":"x","last_seen":"2026-01-01T00:00:00Z"},{"id":"y","status":"up"}]}`)
	b := []byte(`{"services":[{"id":"x", "last_seen":"2026-01-01T00:00:00Z"},{"id":"y","status":"up"}]}`)
	expect(t, CheckReplicasEqual(map[string][]byte{"n1": a, "n2": b, "n3": a}))
	// The read-time views (from each node's own clock) are not compared.
	clocked := []byte(`{"services":[{"id":"x","last_seen":"2026-01-01T00:00:00Z","timeline":"uuud","uptime":{"24h":0.9}},{"id":"y","status":"up"}]}`)
	expect(t, CheckReplicasEqual(map[string][]byte{"n1": a, "n2": clocked}))
	c := []byte(`{"services":[{"id":"x","last_seen":"2026-01-01T00:00:01Z"}]}`)
	vs := CheckReplicasEqual(map[string][]byte{"n1": a, "n2": c})
	expect(t, vs, RuleReplicasDiffer, RuleReplicasDiffer)
	if !strings.Contains(vs[1].Detail, "no such service") {
		t.Errorf("a service missing on one node is not named: %v", vs[1])
	}
}
