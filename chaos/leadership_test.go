package chaos

// The rules the random schedules (random_test.go) add to the history
// checker: the stamps of each leadership, no action from a stale leader, a
// duplicate delivery only across a leader change, and replicas equal at the
// end. Pure, like the rest of the checker: leadership_check_test.go feeds
// them hand-made histories.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// The rules these checks can report broken.
const (
	RuleStaleLeader     = "action from a stale leader"
	RuleDuplicate       = "duplicate without a leader change"
	RuleReplicasDiffer  = "replicas differ"
	RuleNotRecovered    = "cluster not recovered"
	termSlop            = time.Second     // a takeover is seen up to a poll late
	takeoverLate        = 2 * time.Second // and its leadership's time taken once caught up
	staleGrace          = 500 * time.Millisecond
	leadershipSeenAfter = time.Second
)

// StampTerm is one leadership as the stamps see it: from From (when the
// poll saw Node take over) its stamps are at least Floor ahead of this
// machine's clock (behind, for a negative Floor).
type StampTerm struct {
	Node  string
	From  time.Time
	Floor time.Duration
}

// clockChange is a node's wall clock offset set at At (clock_test.go).
type clockChange struct {
	Node   string
	At     time.Time
	Offset time.Duration
}

// minOffset is the lowest offset node's clock had at any time in [from, to].
func minOffset(clocks []clockChange, node string, from, to time.Time) time.Duration {
	var cur time.Duration
	for _, c := range clocks {
		if c.Node == node && !c.At.After(from) {
			cur = c.Offset
		}
	}
	low := cur
	for _, c := range clocks {
		if c.Node == node && c.At.After(from) && !c.At.After(to) {
			low = min(low, c.Offset)
		}
	}
	return low
}

// stampFloor is how far the stamp of a's heartbeat is at least from its
// sending time: -StampLag, or from the leaderships that may have stamped
// it, the lowest of their floors.
func (h *History) stampFloor(a Ack) time.Duration {
	if len(h.Terms) == 0 {
		return -h.StampLag
	}
	return floorAt(h.Terms, a.Sent.Add(-termSlop), a.Acked.Add(termSlop))
}

// floorAt is the lowest floor of the terms in force at some time in
// [from, to]; 0 before the first.
func floorAt(terms []StampTerm, from, to time.Time) time.Duration {
	var low time.Duration
	found := false
	for i, t := range terms {
		inForceAtFrom := !t.From.After(from) && (i+1 == len(terms) || terms[i+1].From.After(from))
		if inForceAtFrom || (t.From.After(from) && !t.From.After(to)) {
			if !found || t.Floor < low {
				low, found = t.Floor, true
			}
		}
	}
	return low
}

// stampTerms gives each takeover its floor (docs/guarantees.md). A leader
// stamps its leadership's time: its wall clock when it took over, or just
// after the latest time committed if that is later, advanced by its
// monotonic clock. So its stamps lead this machine's clock by at least its
// clock's offset then, and by at least what a heartbeat committed before
// led by, less the time from that heartbeat's sending to the takeover. The
// offset counted is the lowest the node had since its previous takeover (a
// claim seen again after a pause is the same leadership), from two seconds
// before. The heartbeat is the latest acknowledged a second before the
// takeover was seen (one acknowledged later may be the new leader's own),
// and the leadership's time taken when it has caught up, up to takeoverLate
// after it was seen.
func stampTerms(takeovers []Takeover, clocks []clockChange, acks []Ack) []StampTerm {
	ks := slices.Clone(takeovers)
	slices.SortFunc(ks, func(a, b Takeover) int { return a.At.Compare(b.At) })
	byAcked := slices.Clone(acks)
	slices.SortFunc(byAcked, func(a, b Ack) int { return a.Acked.Compare(b.Acked) })
	var terms []StampTerm
	prev := map[string]time.Time{}
	for _, k := range ks {
		from := k.At.Add(-2 * time.Second)
		if p, ok := prev[k.Node]; ok && p.Add(-2*time.Second).Before(from) {
			from = p.Add(-2 * time.Second)
		}
		prev[k.Node] = k.At
		floor := minOffset(clocks, k.Node, from, k.At.Add(termSlop))
		i, _ := slices.BinarySearchFunc(byAcked, k.At.Add(-termSlop), func(a Ack, t time.Time) int { return a.Acked.Compare(t) })
		if i > 0 && len(terms) > 0 {
			// The latest sent of those acknowledged by then.
			last := byAcked[0]
			for _, a := range byAcked[:i] {
				if a.Sent.After(last.Sent) {
					last = a
				}
			}
			before := floorAt(terms, last.Sent.Add(-termSlop), last.Acked.Add(termSlop))
			floor = max(floor, before-k.At.Add(takeoverLate).Sub(last.Sent))
		}
		terms = append(terms, StampTerm{Node: k.Node, From: k.At, Floor: floor})
	}
	return terms
}

// CheckLeadership runs the rules that need the leaderships seen: no action
// from a stale leader, and a duplicate delivery only across a leader change.
func CheckLeadership(h *History, r Rules) []Violation {
	return append(staleLeaderActions(h, r), duplicatesPerLeaderChange(h)...)
}

// staleLeaderActions is "no action from a stale leader": once a majority
// names another leader, a node runs no action, unless a majority names it
// leader again (seen up to a poll after the action). Excused: an action
// started within staleGrace of the other's leadership being seen (it may
// have confirmed its leadership just before), and one started within the
// crash window after the node was woken from SIGSTOP (it confirmed its
// leadership, then was frozen before it ran the action: no leader check
// can see a pause between the check and the act).
func staleLeaderActions(h *History, r Rules) []Violation {
	var out []Violation
	for _, e := range h.Execs {
		var last *Takeover
		for i, l := range h.Leaderships {
			if !l.At.After(e.At.Add(-staleGrace)) {
				last = &h.Leaderships[i]
			}
		}
		if last == nil || last.Node == e.Node {
			continue
		}
		again := slices.ContainsFunc(h.Leaderships, func(l Takeover) bool {
			return l.Node == e.Node && l.At.After(last.At) && !l.At.After(e.At.Add(leadershipSeenAfter))
		})
		woken := slices.ContainsFunc(h.Faults, func(f Fault) bool {
			return f.Kind == "SIGSTOP" && f.Node == e.Node && !e.At.Before(f.From) && !e.At.After(f.To.Add(r.CrashWindow))
		})
		if again || woken {
			continue
		}
		out = append(out, Violation{RuleStaleLeader, e.Service, fmt.Sprintf(
			"%s ran the %s action of incident %s at %s, but a majority named %s leader at %s and never %s again",
			e.Node, e.Event, e.Incident, ms(e.At), last.Node, ms(last.At), e.Node)})
	}
	return out
}

// duplicatesPerLeaderChange is "at most one duplicate per leader change":
// an incident's event runs again only after a new leader took over, so its
// runs are at most one more than the takeovers seen from a poll before its
// first run to a poll after its last. (They share the incident id, the
// idempotency key, by construction: that is what groups them.)
func duplicatesPerLeaderChange(h *History) []Violation {
	keys, runs := runsByEvent(h)
	var out []Violation
	for _, k := range keys {
		es := runs[k]
		if len(es) < 2 {
			continue
		}
		slices.SortFunc(es, func(a, b Exec) int { return a.At.Compare(b.At) })
		from, to := es[0].At.Add(-leadershipSeenAfter), es[len(es)-1].At.Add(leadershipSeenAfter)
		changes := 0
		for _, t := range h.Takeovers {
			if t.At.After(from) && !t.At.After(to) {
				changes++
			}
		}
		if len(es)-1 <= changes {
			continue
		}
		var where []string
		for _, e := range es {
			where = append(where, e.Node+"@"+ms(e.At))
		}
		out = append(out, Violation{RuleDuplicate, k.service, fmt.Sprintf(
			"incident %s: %s action ran %d times (%s) across %d takeovers seen",
			k.incident, k.event, len(es), strings.Join(where, ", "), changes)})
	}
	return out
}

// CheckReplicasEqual is "replicas equal at the end": views holds each
// node's GET /v1/services body, read at one applied index; every service
// must read the same on every node, but for readTimeFields.
func CheckReplicasEqual(views map[string][]byte) []Violation {
	type services struct {
		Services []json.RawMessage `json:"services"`
	}
	byNode := map[string]map[string][]byte{}
	for node, body := range views {
		var v services
		if err := json.Unmarshal(body, &v); err != nil {
			return []Violation{{RuleReplicasDiffer, "-", fmt.Sprintf("%s: /v1/services: %v", node, err)}}
		}
		byNode[node] = map[string][]byte{}
		for _, raw := range v.Services {
			var fields map[string]json.RawMessage
			var id struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &fields); err != nil {
				return []Violation{{RuleReplicasDiffer, "-", fmt.Sprintf("%s: /v1/services: %v", node, err)}}
			}
			if err := json.Unmarshal(raw, &id); err != nil {
				return []Violation{{RuleReplicasDiffer, "-", fmt.Sprintf("%s: /v1/services: %v", node, err)}}
			}
			for _, k := range readTimeFields {
				delete(fields, k)
			}
			replicated, _ := json.Marshal(fields) // map keys sorted, values compacted
			byNode[node][id.ID] = replicated
		}
	}
	nodes := slices.Sorted(maps.Keys(byNode))
	if len(nodes) < 2 {
		return nil
	}
	var out []Violation
	ref := nodes[0]
	for _, node := range nodes[1:] {
		all := map[string]bool{}
		for id := range byNode[ref] {
			all[id] = true
		}
		for id := range byNode[node] {
			all[id] = true
		}
		for _, id := range slices.Sorted(maps.Keys(all)) {
			a, b := byNode[ref][id], byNode[node][id]
			if !bytes.Equal(a, b) {
				out = append(out, Violation{RuleReplicasDiffer, id, fmt.Sprintf("%s has %s; %s has %s",
					ref, orNone(a), node, orNone(b))})
			}
		}
	}
	return out
}

// readTimeFields are computed by the node that answers, from its own clock
// at the time of the read, not replicated: the timeline's last bucket and
// the uptime ratios. A node whose clock the lab stepped renders them for
// another instant, and after a leader's forward step the cluster's stamps
// run ahead of an unstepped node's clock (docs/guarantees.md, the clocks).
var readTimeFields = []string{"timeline", "uptime"}

func orNone(b []byte) string {
	if b == nil {
		return "no such service"
	}
	return string(b)
}
