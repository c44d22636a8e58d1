package chaos

// Judging a scenario and the whole run against the recorded history, and
// the summary printed at the end.

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// judge waits until the scenario's silent services are detected (or due),
// checks the whole history so far, and reports this scenario's counts.
func (r *runner) judge(t *testing.T, s *step, began time.Time, acks0, failed0 int) {
	for _, svc := range s.silent {
		if !r.wl.waitSilent(svc, 30*time.Second) {
			t.Errorf("%s still heartbeating 30s after it was silenced", svc)
		}
	}
	// Wait for each silent service's down action, or until it is overdue
	// (the checker then reports it missed or late).
	for {
		h, err := r.history()
		if err != nil {
			t.Fatal(err)
		}
		waiting := false
		for _, svc := range s.silent {
			last := lastAckOf(h, svc)
			due := h.due(last.Sent, last.Acked, h.Timeout[svc]+h.Slack[svc])
			if time.Now().Before(due) && !hasDown(h, svc, last.Sent.Add(h.Timeout[svc])) {
				waiting = true
			}
		}
		if !waiting {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	// No lost heartbeat: every node must catch up with what was acknowledged.
	var lost []Violation
	deadline := time.Now().Add(15 * time.Second)
	for {
		asOf := time.Now()
		seen, readErr := r.c.replicasAfter(asOf, 5*time.Second)
		if readErr == nil {
			h, err := r.history()
			if err != nil {
				t.Fatal(err)
			}
			if lost = CheckReplicas(h, seen, asOf); len(lost) == 0 {
				break
			}
		} else {
			lost = []Violation{{RuleLostHeartbeat, "-", "could not read the replicas: " + readErr.Error()}}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}

	h, err := r.history()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	vs := append(lost, Check(h, now, DefaultRules)...)
	if r.extra != nil {
		vs = append(vs, r.extra(h, now)...)
	}

	row := s.row
	row.took = now.Sub(began)
	acks, _, failed, _ := r.wl.snapshot()
	row.acked, row.failed = len(acks)-acks0, failed-failed0
	detected := map[string]string{} // service -> its incident
	for _, svc := range s.silent {
		last := lastAckOf(h, svc)
		first := Exec{}
		for _, e := range h.Execs {
			if e.Service == svc && e.Event == "down" && !e.At.Before(last.Sent.Add(h.Timeout[svc])) &&
				(first.At.IsZero() || e.At.Before(first.At)) {
				first = e
			}
		}
		if first.At.IsZero() {
			continue
		}
		row.detected++
		detected[svc] = first.Incident
		row.worstDetection = max(row.worstDetection, first.At.Sub(last.Acked.Add(h.Timeout[svc])))
	}
	for _, e := range h.Execs {
		switch {
		case e.Event == "down" && detected[e.Service] == e.Incident:
			row.runs++
		case e.At.Before(began):
		case e.Event == "down":
			row.otherDown++
		default:
			row.otherRecovered++
		}
	}
	for _, k := range h.Takeovers {
		if !k.At.Before(began) {
			row.takeovers = append(row.takeovers, fmt.Sprintf("%s@+%.1fs", k.Node, k.At.Sub(began).Seconds()))
		}
	}
	for _, v := range vs {
		if r.seen[v.String()] {
			continue
		}
		r.seen[v.String()] = true
		row.violations++
		t.Errorf("violation: %s", v)
	}
	r.mu.Lock()
	r.rows = append(r.rows, *row)
	r.mu.Unlock()
	t.Logf("%s: heartbeats acknowledged %d (rounds no node acknowledged: %d); down actions expected %d, run for %d (%d runs), at worst %v after the timeout; "+
		"actions for services still beating: %d down, %d recovered; violations %d; new leader after %s; takeovers seen %s",
		row.name, row.acked, row.failed, row.expected, row.detected, row.runs, row.worstDetection.Round(time.Millisecond),
		row.otherDown, row.otherRecovered, row.violations, durations(row.newLeader), strings.Join(row.takeovers, " "))
}

// final checks the whole run once every silence is due, and prints the
// table of counts.
func (r *runner) final(t *testing.T) {
	h, err := r.history()
	if err != nil {
		t.Fatal(err)
	}
	var latest time.Time
	for svc := range h.Silenced {
		last := lastAckOf(h, svc)
		if due := h.due(last.Sent, last.Acked, h.Timeout[svc]+h.Slack[svc]); due.After(latest) && !hasDown(h, svc, last.Sent.Add(h.Timeout[svc])) {
			latest = due
		}
	}
	time.Sleep(time.Until(latest))
	if h, err = r.history(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, v := range Check(h, time.Now(), DefaultRules) {
		if !r.seen[v.String()] {
			r.seen[v.String()] = true
			total++
			t.Errorf("violation (whole run): %s", v)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-26s %6s %6s %8s %8s %5s %9s %11s %10s %-16s %s\n", "scenario", "acked", "failed",
		"expected", "detected", "runs", "worst", "other d/r", "violations", "new leader", "took")
	for _, row := range r.rows {
		fmt.Fprintf(&b, "%-26s %6d %6d %8d %8d %5d %9v %11s %10d %-16s %v\n", row.name, row.acked, row.failed,
			row.expected, row.detected, row.runs, row.worstDetection.Round(10*time.Millisecond),
			fmt.Sprintf("%d/%d", row.otherDown, row.otherRecovered), row.violations, durations(row.newLeader),
			row.took.Round(100*time.Millisecond))
		total += row.violations
	}
	fmt.Fprintf(&b, "acked: heartbeats acknowledged; failed: rounds in which no node acknowledged; expected/detected/runs: down actions\n"+
		"owed to the scenario's silent services, services that got one, times they ran; worst: latest of those after the\n"+
		"timeout; other d/r: down/recovered actions for services still beating (allowed by a gap in their acks)\n")
	downs, recovered := 0, 0
	for _, e := range h.Execs {
		if e.Event == "down" {
			downs++
		} else {
			recovered++
		}
	}
	fmt.Fprintf(&b, "whole run: %d heartbeats acknowledged, %d actions run (%d down, %d recovered) for %d silenced services, %d violations, %v",
		len(h.Acks), len(h.Execs), downs, recovered, len(h.Silenced), total, time.Since(r.start).Round(time.Second))
	t.Log(b.String())
}

func lastAckOf(h *History, svc string) Ack {
	last := Ack{Sent: h.Start, Acked: h.Start}
	for _, a := range h.Acks {
		if a.Service == svc && a.Sent.After(last.Sent) {
			last = a
		}
	}
	return last
}

func hasDown(h *History, svc string, after time.Time) bool {
	for _, e := range h.Execs {
		if e.Service == svc && e.Event == "down" && !e.At.Before(after) {
			return true
		}
	}
	return false
}

func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.Round(time.Millisecond).String())
	}
	return strings.Join(out, ", ")
}
