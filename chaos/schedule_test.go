package chaos

// Random fault schedules (issue 13): each schedule is drawn, whole and
// before it runs, from a seed, so that the same seed gives the same faults
// in the same order at the same offsets. What a fault hits is drawn as a
// role (the leader, or the first or second follower by id) and resolved
// when it runs, so a replay on a fresh cluster hits the same roles.

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// The main faults of an episode: one at a time, so that two nodes always
// form a majority once it is over.
const (
	epQuiet   = "quiet"   // nothing but the episode's conditions
	epKill    = "kill -9" // restarted after Hold
	epStop    = "SIGSTOP" // SIGCONT after Hold
	epIsolate = "isolate" // symmetric partition: the target against the two others
	epOneWay  = "one-way" // the target hears nothing from Other (it still sends to it)
	epDeaf    = "deaf"    // the target hears no other node (its packets still go out)
	epBridge  = "bridge"  // the two nodes other than the target are cut from each other; the target reaches both
	epWipe    = "wipe"    // kill -9, data dir removed, restarted empty after Hold
	epRemove  = "remove"  // kill -9, removed from the configuration (API token), restarted after Hold and re-added
)

// The conditions: on every link between nodes, for part of an episode; a
// clock step stays until the schedule heals.
const (
	condLoss      = "loss"      // each packet dropped with probability Prob, each way (iptables statistic)
	condDelay     = "delay"     // Raft delayed by Delay each way (the proxy)
	condDuplicate = "duplicate" // each packet sent twice with probability Prob (iptables TEE)
	condReorder   = "reorder"   // Raft's reads each delayed by up to Delay at random (the proxy), so messages overtake each other
	condClock     = "clock"     // Target's wall clock stepped by Offset
)

const (
	roleLeader   = "leader"
	roleFollower = "follower" // Pick chooses which, by id
)

type episode struct {
	Kind   string
	Target string
	Pick   int           // which follower: 0 or 1, by id
	Other  int           // one-way: which of the two other nodes, by id, the target stops hearing
	Hold   time.Duration // how long the fault lasts
	Tail   time.Duration // after it, before the episode ends
	// Wipe, for remove: the node comes back on an empty data dir (a new
	// node under the old id) rather than its own.
	Wipe bool
	// Silence is when, from the episode's start, one of the schedule's
	// services goes silent; negative: none does.
	Silence time.Duration
	Conds   []condition
}

type condition struct {
	Kind        string
	Start, Hold time.Duration // from the episode's start
	Prob        float64
	Delay       time.Duration
	Target      string
	Pick        int
	Offset      time.Duration
}

type schedule struct {
	Seed     uint64 // the run's
	Index    int
	Episodes []episode
}

// faultSpan is how long a schedule's faults last at least, in all: with
// the waits for a whole cluster between episodes and the heal and check
// after the last, a schedule takes about 25 s.
const faultSpan = 14 * time.Second

var mainFaults = []string{epQuiet, epKill, epKill, epStop, epIsolate, epIsolate, epOneWay, epDeaf, epBridge, epWipe, epRemove}

var condKinds = []string{condLoss, condDelay, condDuplicate, condReorder, condClock}

var clockSteps = []time.Duration{-time.Hour, -30 * time.Second, -3 * time.Second, 3 * time.Second, 30 * time.Second, time.Hour}

// planSchedule draws schedule index of the run with seed seed.
func planSchedule(seed uint64, index int) schedule {
	rng := rand.New(rand.NewPCG(seed, uint64(index)))
	s := schedule{Seed: seed, Index: index}
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)/int64(100*time.Millisecond)+1))*100*time.Millisecond
	}
	role := func() (string, int) {
		if rng.IntN(2) == 0 {
			return roleLeader, 0
		}
		return roleFollower, rng.IntN(2)
	}
	var total time.Duration
	for total < faultSpan {
		e := episode{Kind: mainFaults[rng.IntN(len(mainFaults))], Hold: between(2*time.Second, 6*time.Second),
			Tail: between(500*time.Millisecond, 2*time.Second), Silence: -1}
		e.Target, e.Pick = role()
		switch e.Kind {
		case epRemove:
			e.Wipe = rng.IntN(2) == 0
		case epOneWay:
			e.Other = rng.IntN(2)
		}
		if rng.IntN(3) > 0 {
			e.Silence = between(0, e.Hold+e.Tail-100*time.Millisecond)
		}
		for range rng.IntN(3) {
			span := e.Hold + e.Tail
			c := condition{Kind: condKinds[rng.IntN(len(condKinds))]}
			if slices.ContainsFunc(e.Conds, func(o condition) bool { return o.Kind == c.Kind }) {
				continue // one of each kind at a time
			}
			c.Start = between(0, span/2)
			c.Hold = between(time.Second, span-c.Start)
			switch c.Kind {
			case condLoss:
				c.Prob = float64(2+rng.IntN(9)) / 100
			case condDuplicate:
				c.Prob = float64(5+rng.IntN(26)) / 100
			case condDelay:
				c.Delay = between(20*time.Millisecond, 200*time.Millisecond)
			case condReorder:
				c.Delay = between(10*time.Millisecond, 150*time.Millisecond)
			case condClock:
				c.Target, c.Pick = role()
				c.Offset = clockSteps[rng.IntN(len(clockSteps))]
			}
			e.Conds = append(e.Conds, c)
		}
		s.Episodes = append(s.Episodes, e)
		total += e.Hold + e.Tail
	}
	return s
}

func (r roleRef) String() string {
	if r.role == roleLeader {
		return "the leader"
	}
	return fmt.Sprintf("follower %d", r.pick+1)
}

// roleRef names what a fault hits before it runs.
type roleRef struct {
	role string
	pick int
}

func (e episode) String() string {
	target := roleRef{e.Target, e.Pick}.String()
	var b strings.Builder
	switch e.Kind {
	case epQuiet:
		fmt.Fprintf(&b, "quiet %v", e.Hold)
	case epOneWay:
		fmt.Fprintf(&b, "%s deaf to one other node for %v", target, e.Hold)
	case epBridge:
		fmt.Fprintf(&b, "bridge: the others cut from each other, %s reaching both, for %v", target, e.Hold)
	case epRemove:
		fmt.Fprintf(&b, "remove %s (kill -9, DELETE /v1/cluster/members), back after %v on %s data dir", target, e.Hold,
			map[bool]string{true: "an empty", false: "its own"}[e.Wipe])
	default:
		fmt.Fprintf(&b, "%s %s for %v", e.Kind, target, e.Hold)
	}
	for _, c := range e.Conds {
		b.WriteString(" + ")
		b.WriteString(c.String())
	}
	if e.Silence >= 0 {
		fmt.Fprintf(&b, "; a service silent at +%v", e.Silence)
	}
	fmt.Fprintf(&b, "; then %v", e.Tail)
	return b.String()
}

func (c condition) String() string {
	var what string
	switch c.Kind {
	case condLoss:
		what = fmt.Sprintf("%.0f%% loss", c.Prob*100)
	case condDuplicate:
		what = fmt.Sprintf("%.0f%% duplication", c.Prob*100)
	case condDelay:
		what = fmt.Sprintf("Raft delayed %v", c.Delay)
	case condReorder:
		what = fmt.Sprintf("Raft reordered (jitter %v)", c.Delay)
	case condClock:
		return fmt.Sprintf("clock of %s stepped %v at +%v", roleRef{c.Target, c.Pick}, c.Offset, c.Start)
	}
	return fmt.Sprintf("%s from +%v for %v", what, c.Start, c.Hold)
}

func (s schedule) String() string {
	var b strings.Builder
	for i, e := range s.Episodes {
		fmt.Fprintf(&b, "\n  %d. %s", i+1, e)
	}
	return b.String()
}

// brief names the schedule's faults on one line.
func (s schedule) brief() string {
	var parts []string
	for _, e := range s.Episodes {
		p := e.Kind
		if e.Kind != epQuiet {
			p += " " + roleRef{e.Target, e.Pick}.String()
		}
		for _, c := range e.Conds {
			p += " +" + c.Kind
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}
