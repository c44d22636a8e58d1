package chaos

// The history checker: what the chaos workload saw (acknowledged heartbeats,
// the exec actions every node ran, the faults the test injected) checked
// against the guarantees of docs/guarantees.md. It is pure: checker_test.go feeds it
// hand-made histories, chaos_test.go the recorded ones.
//
// All times are wall-clock times of this machine: the nodes are processes
// on the same host, so the leader's heartbeat stamps, the action script's
// `date` and the test's time.Now share one clock.

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Ack is one acknowledged heartbeat: the attempt sent at Sent to Node got
// its 200 at Acked. The leader stamped it somewhere in [Sent, Acked].
type Ack struct {
	Service     string
	Node        string
	Sent, Acked time.Time
}

// Attempt is a heartbeat attempt that got no 200 (Result says what it got
// instead). The checker does not use them: a failed attempt may or may not
// have been committed. They explain gaps in acks.
type Attempt struct {
	Service, Node string
	Sent, Done    time.Time
	Result        string
}

// Exec is one run of the exec action: one line of a node's action log.
type Exec struct {
	Event    string // "down" or "recovered"
	Service  string
	Incident string
	Node     string
	At       time.Time
}

// Fault is a period during which Node ("*": every node) was under a fault the
// test injected: cut off, stopped, killed, restarting, on lossy links.
type Fault struct {
	Kind     string
	Node     string
	From, To time.Time
	// Minority says the node was cut off from the majority for the whole
	// period (isolated, or alone with both others dead): it must not act.
	Minority bool
}

func (f Fault) covers(node string, at time.Time, before, after time.Duration) bool {
	if f.Node != "*" && f.Node != node {
		return false
	}
	return !at.Before(f.From.Add(-before)) && !at.After(f.To.Add(after))
}

// Takeover is a node seen claiming leadership when it did not before (or
// was not reachable): a new leader, which gives every service a full
// timeout from then before it declares it down.
type Takeover struct {
	Node string
	At   time.Time
}

// History is everything recorded during a run.
type History struct {
	// Start is before any node started: no heartbeat of this cluster is
	// older, and no service can be overdue before Start plus its timeout.
	Start   time.Time
	Timeout map[string]time.Duration // every service of the workload
	Acks    []Ack                    // in any order
	Execs   []Exec
	// Silenced is when a service's client stopped for good: it sends
	// nothing after its last acknowledged heartbeat.
	Silenced map[string]time.Time
	// Slack is, per silenced service, how late after its last heartbeat
	// plus timeout its down action may run; Rules.Slack when absent.
	Slack  map[string]time.Duration
	Faults []Fault
	// Takeovers are the leaderships seen by polling every node. One can
	// be missed (a flip between polls); seen ones are late by a poll.
	Takeovers []Takeover
	// Leaderships are the new leaders a majority of the nodes named, by
	// polling (a stale leader's claim is not one); a flip between polls
	// can be missed.
	Leaderships []Takeover
	Failed      []Attempt // for the record only
	// StampLag is how far last_seen may trail the sending time of a
	// heartbeat: zero, unless a scenario handed leadership to a node whose
	// wall clock is behind. Such a leader goes on from the latest time
	// committed (docs/guarantees.md), so its stamps trail the test's clock
	// by as long as the failover took; they still order after every
	// earlier one.
	StampLag time.Duration
	// Terms, when set, replace StampLag: how far each leadership's stamps
	// may trail (a negative Floor) or must lead (a positive one) the time
	// this machine's clock said (stampTerms).
	Terms []StampTerm
}

// Rules are the allowances of the checker.
type Rules struct {
	// Slack is how late a down action may run after the silence started
	// plus the timeout (a failover gives every service a full timeout from
	// the new leader's takeover, so a fault adds to it).
	Slack time.Duration
	// MinorityGrace: an action run this soon after its node was cut off
	// may have had its leadership confirmed just before the cut.
	MinorityGrace time.Duration
	// CrashWindow: an incident's action may run a second time when the
	// node that ran it first was under a fault from this long before to
	// this long after that first run (it died, stopped or lost leadership
	// before the outcome committed).
	CrashWindow time.Duration
}

// DefaultRules are what the chaos test checks with.
var DefaultRules = Rules{Slack: 4 * time.Second, MinorityGrace: 500 * time.Millisecond, CrashWindow: 3 * time.Second}

// The rules a violation can break.
const (
	RuleLostHeartbeat = "lost heartbeat"
	RuleFalseDeath    = "false death"
	RuleMissedDeath   = "missed death"
	RuleLateDeath     = "late death"
	RuleDoubleAction  = "double action"
	RuleMinority      = "action from a minority"
)

// Violation is one broken guarantee.
type Violation struct {
	Rule    string
	Service string
	Detail  string
}

func (v Violation) String() string { return fmt.Sprintf("%s: %s: %s", v.Rule, v.Service, v.Detail) }

// ms formats a time for messages: the clock time to the millisecond.
func ms(t time.Time) string { return t.Format("15:04:05.000") }

// acksOf returns each service's acknowledged heartbeats, by time sent.
func (h *History) acksOf() map[string][]Ack {
	by := map[string][]Ack{}
	for _, a := range h.Acks {
		by[a.Service] = append(by[a.Service], a)
	}
	for _, as := range by {
		slices.SortFunc(as, func(a, b Ack) int { return a.Sent.Compare(b.Sent) })
	}
	return by
}

// CheckReplicas is "no lost heartbeat": lastSeen (node -> service -> its
// last_seen there), read once every node was back and connected, must be no
// older than the sending time of every heartbeat acknowledged before asOf.
func CheckReplicas(h *History, lastSeen map[string]map[string]time.Time, asOf time.Time) []Violation {
	latest := map[string]Ack{}
	for _, a := range h.Acks {
		if a.Acked.Before(asOf) && a.Sent.After(latest[a.Service].Sent) {
			latest[a.Service] = a
		}
	}
	var out []Violation
	for _, node := range slices.Sorted(maps.Keys(lastSeen)) {
		for _, svc := range slices.Sorted(maps.Keys(latest)) {
			a := latest[svc]
			seen, ok := lastSeen[node][svc]
			switch {
			case !ok:
				out = append(out, Violation{RuleLostHeartbeat, svc,
					fmt.Sprintf("%s does not know the service; heartbeat sent %s was acknowledged by %s", node, ms(a.Sent), a.Node)})
			case seen.Before(a.Sent.Add(h.stampFloor(a))):
				out = append(out, Violation{RuleLostHeartbeat, svc,
					fmt.Sprintf("%s has last_seen %s, older than the heartbeat sent %s and acknowledged by %s at %s (its stamp at least %v from the sending)",
						node, ms(seen), ms(a.Sent), a.Node, ms(a.Acked), h.stampFloor(a))})
			}
		}
	}
	return out
}

// Check runs every rule but "no lost heartbeat" on the history as of now.
func Check(h *History, now time.Time, r Rules) []Violation {
	var out []Violation
	out = append(out, falseDeaths(h, now)...)
	out = append(out, missedDeaths(h, now, r)...)
	out = append(out, doubleActions(h, r)...)
	out = append(out, minorityActions(h, r)...)
	return out
}

// incident is one incident as the action logs tell it.
type incident struct {
	service, id string
	first       Exec // the first run of its down action
}

// downIncidents returns each service's incidents that ran a down action,
// by the time of that first run.
func downIncidents(h *History) map[string][]incident {
	first := map[string]Exec{}
	for _, e := range h.Execs {
		if e.Event != "down" {
			continue
		}
		key := e.Service + "\x00" + e.Incident
		if f, ok := first[key]; !ok || e.At.Before(f.At) {
			first[key] = e
		}
	}
	by := map[string][]incident{}
	for _, e := range first {
		by[e.Service] = append(by[e.Service], incident{e.Service, e.Incident, e})
	}
	for _, incs := range by {
		slices.SortFunc(incs, func(a, b incident) int { return a.first.At.Compare(b.first.At) })
	}
	return by
}

// silentWindow is a stretch during which a service may have had no
// heartbeat committed: from the sending of one acknowledged heartbeat to
// the acknowledgement of the next (or from Start to the first, or from the
// last to now). The leader stamped each in [Sent, Acked], so no longer
// silence can hide between them.
type silentWindow struct{ from, to time.Time }

func windows(h *History, acks []Ack, now time.Time) []silentWindow {
	var ws []silentWindow
	from := h.Start
	for _, a := range acks {
		ws = append(ws, silentWindow{from, a.Acked})
		from = a.Sent
	}
	return append(ws, silentWindow{from, now})
}

// falseDeaths is "no false death". An incident opened at O means no
// heartbeat was committed in the timeout before O; so the acknowledged
// heartbeats around it left a window at least one timeout long that began
// at least one timeout before the incident's first down action. Two
// incidents in one window need a heartbeat between them (one whose 200 was
// lost) and a timeout of silence each, so a window of length l accounts
// for l/timeout incidents at most: a service's k-th incident needs that
// many beginning a timeout before it. A gap in acks because the cluster
// answered 503 or did not answer counts as a window like any other.
func falseDeaths(h *History, now time.Time) []Violation {
	var out []Violation
	acks := h.acksOf()
	incs := downIncidents(h)
	for _, svc := range slices.Sorted(maps.Keys(incs)) {
		timeout, ok := h.Timeout[svc]
		if !ok {
			out = append(out, Violation{RuleFalseDeath, svc, "down action for a service the workload never used"})
			continue
		}
		ws := windows(h, acks[svc], now)
		for k, inc := range incs[svc] {
			latest := inc.first.At.Add(-timeout)
			n := 0 // incidents the windows begun by latest can account for
			for _, w := range ws {
				if !w.from.After(latest) {
					n += int(w.to.Sub(w.from) / timeout)
				}
			}
			if n > k {
				continue
			}
			out = append(out, Violation{RuleFalseDeath, svc, fmt.Sprintf(
				"incident %s ran its down action on %s at %s, but the acknowledged heartbeats never left a gap of %v before then (incident %d of the service, %d such gaps)",
				inc.id, inc.first.Node, ms(inc.first.At), timeout, k+1, n)})
			break // the later ones would only repeat it
		}
	}
	return out
}

// inMinority reports the fault that had node cut off at t, if any.
func inMinority(h *History, node string, at time.Time, grace time.Duration) (Fault, bool) {
	for _, f := range h.Faults {
		if f.Minority && (f.Node == node || f.Node == "*") && !at.Before(f.From.Add(grace)) && !at.After(f.To) {
			return f, true
		}
	}
	return Fault{}, false
}

// due is when the down action of a service silent since its heartbeat
// sent at sent and acknowledged at acked must have run: its timeout and
// the slack (allow) after the heartbeat, or after the last takeover before
// that, since a new leader gives every service a full timeout.
func (h *History) due(sent, acked time.Time, allow time.Duration) time.Time {
	due := acked.Add(allow)
	for changed := true; changed; {
		changed = false
		for _, k := range h.Takeovers {
			if k.At.After(sent) && !k.At.After(due) && k.At.Add(allow).After(due) {
				due, changed = k.At.Add(allow), true
			}
		}
	}
	return due
}

// missedDeaths is "no missed death": a service whose client went silent
// gets a down action, run in the majority, between its last heartbeat plus
// its timeout and the due time (the slack after the timeout, counted from
// the last takeover if one came after the heartbeat). Only services silent
// long enough by now are judged.
func missedDeaths(h *History, now time.Time, r Rules) []Violation {
	var out []Violation
	acks := h.acksOf()
	for _, svc := range slices.Sorted(maps.Keys(h.Silenced)) {
		timeout := h.Timeout[svc]
		slack, ok := h.Slack[svc]
		if !ok {
			slack = r.Slack
		}
		sent, acked := h.Start, h.Start
		if as := acks[svc]; len(as) > 0 {
			sent, acked = as[len(as)-1].Sent, as[len(as)-1].Acked
		}
		earliest, due := sent.Add(timeout), h.due(sent, acked, timeout+slack)
		if now.Before(due) {
			continue
		}
		var late *Exec
		found := false
		for _, e := range h.Execs {
			if e.Service != svc || e.Event != "down" || e.At.Before(earliest) {
				continue
			}
			if _, minority := inMinority(h, e.Node, e.At, r.MinorityGrace); minority {
				continue // reported by minorityActions
			}
			if !e.At.After(due) {
				found = true
				break
			}
			if late == nil || e.At.Before(late.At) {
				late = &e
			}
		}
		switch {
		case found:
		case late != nil:
			out = append(out, Violation{RuleLateDeath, svc, fmt.Sprintf(
				"silent after the heartbeat acknowledged at %s (timeout %v): down action on %s at %s, %v after it was due at %s (slack %v, counted from the last takeover before)",
				ms(acked), timeout, late.Node, ms(late.At), late.At.Sub(due).Round(time.Millisecond), ms(due), slack)})
		default:
			out = append(out, Violation{RuleMissedDeath, svc, fmt.Sprintf(
				"silent after the heartbeat acknowledged at %s (timeout %v): no down action run in the majority by %s",
				ms(acked), timeout, ms(now))})
		}
	}
	return out
}

// eventKey names one event of one incident: its runs share the
// idempotency key.
type eventKey struct{ service, incident, event string }

// runsByEvent groups the history's action runs by incident event, the keys
// in a stable order.
func runsByEvent(h *History) ([]eventKey, map[eventKey][]Exec) {
	runs := map[eventKey][]Exec{}
	for _, e := range h.Execs {
		k := eventKey{e.Service, e.Incident, e.Event}
		runs[k] = append(runs[k], e)
	}
	keys := slices.SortedFunc(maps.Keys(runs), func(a, b eventKey) int {
		return cmp.Or(cmp.Compare(a.service, b.service), cmp.Compare(a.incident, b.incident), cmp.Compare(a.event, b.event))
	})
	return keys, runs
}

// doubleActions is "no double action": each event of an incident runs its
// action once; twice only when the node that ran it first was under a
// fault around that run (it was killed, stopped or cut off before the
// outcome committed, and the next leader ran it again, with the same
// incident id); never three times.
func doubleActions(h *History, r Rules) []Violation {
	keys, runs := runsByEvent(h)
	var out []Violation
	for _, k := range keys {
		es := runs[k]
		if len(es) == 1 {
			continue
		}
		slices.SortFunc(es, func(a, b Exec) int { return a.At.Compare(b.At) })
		var where []string
		for _, e := range es {
			where = append(where, e.Node+"@"+ms(e.At))
		}
		if len(es) > 2 {
			out = append(out, Violation{RuleDoubleAction, k.service, fmt.Sprintf(
				"incident %s: %s action ran %d times (%s)", k.incident, k.event, len(es), strings.Join(where, ", "))})
			continue
		}
		excused := false
		for _, f := range h.Faults {
			if f.covers(es[0].Node, es[0].At, r.CrashWindow, r.CrashWindow) {
				excused = true
				break
			}
		}
		if !excused {
			out = append(out, Violation{RuleDoubleAction, k.service, fmt.Sprintf(
				"incident %s: %s action ran twice (%s) though %s was under no fault when it ran it first",
				k.incident, k.event, strings.Join(where, ", "), es[0].Node)})
		}
	}
	return out
}

// minorityActions is "no action from a minority".
func minorityActions(h *History, r Rules) []Violation {
	var out []Violation
	for _, e := range h.Execs {
		if f, ok := inMinority(h, e.Node, e.At, r.MinorityGrace); ok {
			out = append(out, Violation{RuleMinority, e.Service, fmt.Sprintf(
				"%s ran the %s action of incident %s at %s, while cut off from the majority (%s from %s to %s)",
				e.Node, e.Event, e.Incident, ms(e.At), f.Kind, ms(f.From), ms(f.To))})
		}
	}
	return out
}

// ParseActionLine reads one line the action script wrote:
// "EVENT SERVICE INCIDENT NODE UNIX_NANOS".
func ParseActionLine(line string) (Exec, error) {
	f := strings.Fields(line)
	if len(f) != 5 {
		return Exec{}, fmt.Errorf("action log line %q: want 5 fields", line)
	}
	var ns int64
	if _, err := fmt.Sscan(f[4], &ns); err != nil || ns <= 0 {
		return Exec{}, fmt.Errorf("action log line %q: bad time", line)
	}
	return Exec{Event: f[0], Service: f[1], Incident: f[2], Node: f[3], At: time.Unix(0, ns)}, nil
}
