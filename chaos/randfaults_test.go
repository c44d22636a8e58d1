package chaos

// The faults of the random schedules (schedule_test.go) as they run: each
// one started returns what ends it, so that faults overlap and heal one by
// one, and healAll can end whatever a failed schedule left behind.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// undoer collects what ends the faults in force.
type undoer struct {
	mu    sync.Mutex
	undos map[int]func()
	next  int
}

// push registers undo and returns what runs it (once).
func (u *undoer) push(undo func()) func() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.undos == nil {
		u.undos = map[int]func(){}
	}
	id := u.next
	u.next++
	u.undos[id] = undo
	return func() {
		u.mu.Lock()
		f, ok := u.undos[id]
		delete(u.undos, id)
		u.mu.Unlock()
		if ok {
			f()
		}
	}
}

// all runs every undo still registered, the latest first.
func (u *undoer) all() {
	u.mu.Lock()
	ids := make([]int, 0, len(u.undos))
	for id := range u.undos {
		ids = append(ids, id)
	}
	u.mu.Unlock()
	slices.Sort(ids)
	for i := len(ids) - 1; i >= 0; i-- {
		u.mu.Lock()
		f, ok := u.undos[ids[i]]
		delete(u.undos, ids[i])
		u.mu.Unlock()
		if ok {
			f()
		}
	}
}

// rules adds iptables rules (each: namespace, then the rule's arguments
// after -A/-D) and returns what deletes them.
func (s *step) rules(specs ...[]string) func() {
	s.t.Helper()
	for i, spec := range specs {
		if err := s.c.lab.iptables(spec[0], ruleArgs("-A", spec[1:])...); err != nil {
			s.deleteRules(specs[:i])
			s.t.Fatal(err)
		}
	}
	return func() { s.deleteRules(specs) }
}

func (s *step) deleteRules(specs [][]string) {
	for _, spec := range specs {
		if err := s.c.lab.iptables(spec[0], ruleArgs("-D", spec[1:])...); err != nil {
			s.t.Errorf("removing a fault rule: %v", err)
		}
	}
}

// ruleArgs turns [table] chain rule... into iptables arguments with op.
func ruleArgs(op string, spec []string) []string {
	if spec[0] == "mangle" {
		return append([]string{"-t", "mangle", op}, spec[1:]...)
	}
	return append([]string{op}, spec...)
}

// cutFrom makes to drop every packet from each of from.
func cutFrom(to *node, from ...*node) [][]string {
	var specs [][]string
	for _, f := range from {
		specs = append(specs, []string{to.ns, "WDC-IN", "-s", f.ip, "-j", "DROP"})
	}
	return specs
}

// everyLink is one rule per ordered pair of nodes, from rule(at, peer).
func (s *step) everyLink(rule func(at, peer *node) []string) [][]string {
	var specs [][]string
	for _, a := range s.c.nodes {
		for _, b := range s.c.nodes {
			if a != b {
				specs = append(specs, rule(a, b))
			}
		}
	}
	return specs
}

// fault records a fault on each of nodes from now, and returns its end.
func (s *step) fault(kind string, minority bool, nodes ...*node) func() {
	var is []int
	for _, n := range nodes {
		is = append(is, s.r.addFault(Fault{Kind: kind, Node: n.id, From: time.Now(), Minority: minority}))
	}
	return func() {
		for _, i := range is {
			s.r.endFault(i)
		}
	}
}

// leaderWithin is the leader the running nodes agree on, or nil if they
// agree on none within d.
func (s *step) leaderWithin(d time.Duration) *node {
	deadline := time.Now().Add(d)
	for {
		var up []*node
		for _, n := range s.c.nodes {
			if n.running() {
				up = append(up, n)
			}
		}
		if l := s.c.leader(up); l != nil {
			return l
		}
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// resolve finds the node a role names now: the leader (or, with none
// agreed on, the first node running), or a follower by its rank by id.
func (s *step) resolve(role string, pick int) *node {
	l := s.leaderWithin(10 * time.Second)
	if role == roleLeader {
		if l != nil {
			return l
		}
		for _, n := range s.c.nodes {
			if n.running() {
				return n
			}
		}
		return s.c.nodes[0]
	}
	followers := s.others(l)
	return followers[pick%len(followers)]
}

// startMain starts an episode's main fault and returns what ends it.
func (s *step) startMain(e episode) func() {
	if e.Kind == epQuiet {
		return func() {}
	}
	n := s.resolve(e.Target, e.Pick)
	s.t.Logf("%s: %s on %s", ms(time.Now()), e.Kind, n.id)
	switch e.Kind {
	case epKill:
		return s.kill9(n)
	case epStop:
		s.c.signal(n, syscall.SIGSTOP)
		end := s.fault("SIGSTOP", false, n)
		return func() {
			s.c.signal(n, syscall.SIGCONT)
			end()
			s.t.Logf("%s: %s continued (SIGCONT)", ms(time.Now()), n.id)
		}
	case epIsolate:
		others := s.others(n)
		undo := s.rules(append(cutFrom(n, others...), outTo(n, others...)...)...)
		end := s.fault("isolated", true, n)
		return func() { end(); undo() }
	case epOneWay:
		others := s.others(n)
		o := others[e.Other%len(others)]
		s.t.Logf("%s: %s hears nothing from %s", ms(time.Now()), n.id, o.id)
		undo := s.rules(cutFrom(n, o)...)
		end := s.fault("one-way", false, n, o)
		return func() { end(); undo() }
	case epDeaf:
		undo := s.rules(cutFrom(n, s.others(n)...)...)
		end := s.fault("deaf", true, n)
		return func() { end(); undo() }
	case epBridge:
		others := s.others(n)
		a, b := others[0], others[1]
		undo := s.rules(append(cutFrom(a, b), cutFrom(b, a)...)...)
		end := s.fault("bridged", false, a, b)
		return func() { end(); undo() }
	case epWipe:
		restart := s.kill9(n)
		s.wipe(n)
		return restart
	case epRemove:
		restart := s.kill9(n)
		end := s.fault("removed", false, n)
		s.removeMember(n)
		if e.Wipe {
			s.wipe(n)
		}
		return func() { restart(); end() }
	}
	s.t.Fatalf("unknown fault %q", e.Kind)
	return nil
}

func outTo(n *node, to ...*node) [][]string {
	var specs [][]string
	for _, o := range to {
		specs = append(specs, []string{n.ns, "WDC-OUT", "-d", o.ip, "-j", "DROP"})
	}
	return specs
}

func (s *step) wipe(n *node) {
	if err := os.RemoveAll(n.dataDir); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("%s: %s's data dir removed", ms(time.Now()), n.id)
}

// apiToken is the cluster's generated API token, from a node's data dir.
func (s *step) apiToken(except *node) string {
	for _, n := range s.others(except) {
		if b, err := os.ReadFile(filepath.Join(n.dataDir, "api-token")); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	s.t.Fatal("no api-token in any data dir")
	return ""
}

// removeMember removes n, which is down, from the Raft configuration
// through the other nodes, as `watchdog members remove` does. It is refused
// while the leader still counts n as answering (up to three status polls),
// and unanswered without a leader: retried for 20 s.
func (s *step) removeMember(n *node) {
	s.t.Helper()
	token := s.apiToken(n)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		for _, o := range s.others(n) {
			if !o.running() {
				continue
			}
			req, _ := http.NewRequest(http.MethodDelete, o.url("/v1/cluster/members/"+n.id), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				last = err.Error()
				continue
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			last = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
			if resp.StatusCode == http.StatusOK {
				s.t.Logf("%s: %s removed through %s: %s", ms(time.Now()), n.id, o.id, strings.TrimSpace(string(body)))
				return
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	s.t.Fatalf("removing %s: not done within 20s: %s", n.id, last)
}

// startCond starts a condition and returns what ends it (nothing, for a
// clock step: the schedule's heal sets the clocks right).
func (s *step) startCond(c condition) func() {
	s.t.Logf("%s: %s", ms(time.Now()), c)
	prob := strconv.FormatFloat(c.Prob, 'f', 4, 64)
	switch c.Kind {
	case condLoss:
		undo := s.rules(s.everyLink(func(at, peer *node) []string {
			return []string{at.ns, "WDC-IN", "-s", peer.ip, "-m", "statistic", "--mode", "random", "--probability", prob, "-j", "DROP"}
		})...)
		end := s.fault("loss", false, s.c.nodes...)
		return func() { end(); undo() }
	case condDuplicate:
		// TEE after the delay proxy's DNAT (POSTROUTING): the copy goes to
		// the same address and port as the packet.
		undo := s.rules(s.everyLink(func(at, peer *node) []string {
			return []string{at.ns, "mangle", "WDC-DUP", "-d", peer.ip, "-m", "statistic", "--mode", "random", "--probability", prob,
				"-j", "TEE", "--gateway", peer.ip}
		})...)
		end := s.fault("duplication", false, s.c.nodes...)
		return func() { end(); undo() }
	case condDelay:
		s.c.setDelay(c.Delay)
		end := s.fault("delay", false, s.c.nodes...)
		return func() { end(); s.c.setDelay(0) }
	case condReorder:
		s.c.setJitter(c.Delay)
		end := s.fault("reorder", false, s.c.nodes...)
		return func() { end(); s.c.setJitter(0) }
	case condClock:
		s.setClock(s.resolve(c.Target, c.Pick), c.Offset)
		return func() {}
	}
	s.t.Fatalf("unknown condition %q", c.Kind)
	return nil
}

// healAll ends every fault still in force: rules, delays, stopped and dead
// nodes, clocks.
func (s *step) healAll(u *undoer) {
	u.all()
	for _, n := range s.c.nodes {
		n.mu.Lock()
		state, dead := n.state, n.cmd == nil
		n.mu.Unlock()
		switch {
		case dead:
			s.c.start(n)
		case state == "stopped":
			s.c.signal(n, syscall.SIGCONT)
		}
	}
	if err := s.c.lab.heal(); err != nil {
		s.t.Errorf("healing the links: %v", err)
	}
	s.c.setDelay(0)
	s.c.setJitter(0)
	s.r.mu.Lock()
	for i := range s.r.faults {
		if s.r.faults[i].To.IsZero() {
			s.r.faults[i].To = time.Now()
		}
	}
	s.r.mu.Unlock()
	s.resetClocks()
}
