package fsm

import (
	"bytes"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// applier feeds commands to an FSM as Raft would, with increasing indexes.
type applier struct {
	t     *testing.T
	f     *FSM
	index uint64
	log   []*raft.Log
}

func newApplier(t *testing.T) *applier { return &applier{t: t, f: New()} }

func (a *applier) apply(c Command) any {
	a.t.Helper()
	b, err := Encode(c)
	if err != nil {
		a.t.Fatalf("encode %T: %v", c, err)
	}
	a.index++
	l := &raft.Log{Index: a.index, Term: 1, Type: raft.LogCommand, Data: b}
	a.log = append(a.log, l)
	return a.f.Apply(l)
}

func (a *applier) service(id string) Service {
	a.t.Helper()
	s, ok := a.f.Service(id)
	if !ok {
		a.t.Fatalf("service %q missing", id)
	}
	return s
}

func TestHeartbeatCreatesWithDefaultsAndOnlyMovesForward(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 100, IDs: []string{"web", "db"}})
	a.apply(Heartbeat{At: 50, IDs: []string{"web"}}) // late, reordered
	web := a.service("web")
	if web.LastSeen != 100 || web.Status != StatusUp {
		t.Fatalf("web = %+v, want last_seen 100 and up", web)
	}
	if !web.Def.Equal(DefaultDefinition()) || web.Source != SourceHeartbeat {
		t.Fatalf("web def = %+v, want the defaults", web.Def)
	}
	if a.service("db").Def != web.Def {
		t.Fatal("services on the defaults should share one Definition")
	}
}

func TestIncidentOpensOnlyIfNothingChanged(t *testing.T) {
	a := newApplier(t)
	a.apply(Configure{At: 1, Defaults: Definition{Timeout: time.Second, Actions: []string{"page"}, OnRecovered: []string{"log"}}})
	a.apply(Heartbeat{At: 10, IDs: []string{"a", "b"}})
	a.apply(Heartbeat{At: 20, IDs: []string{"b"}}) // b beat after the leader looked
	got := a.apply(Incidents{At: 30, Opens: []Open{{Service: "a", LastSeen: 10}, {Service: "b", LastSeen: 10}}})
	opened := got.(Opened)
	if opened[0] == "" || opened[1] != "" {
		t.Fatalf("opened = %q, want a opened and b not", opened)
	}
	if s := a.service("a"); s.Status != StatusDown || s.Current().ID != opened[0] {
		t.Fatalf("a = %+v", s)
	}
	if s := a.service("b"); s.Status != StatusUp || s.Current() != nil {
		t.Fatalf("b = %+v, want up without incident", s)
	}
	// The same open again (a retried proposal) opens nothing more.
	again := a.apply(Incidents{At: 31, Opens: []Open{{Service: "a", LastSeen: 10}}}).(Opened)
	if again[0] != "" || len(a.service("a").Incidents) != 1 {
		t.Fatalf("retried open took effect: %q", again)
	}
	want := []PendingAction{{Service: "a", Incident: opened[0], LastSeen: 10,
		Run: ActionRun{Action: "page", Event: EventDown, Owed: 30, State: ActionPending}}}
	if p := a.f.PendingActions(); !reflect.DeepEqual(p, want) {
		t.Fatalf("pending = %+v, want %+v", p, want)
	}
}

func TestRecoveryAndActionResults(t *testing.T) {
	a := newApplier(t)
	a.apply(Configure{At: 1, Defaults: Definition{Timeout: time.Second, Actions: []string{"page"}, OnRecovered: []string{"log"}}})
	a.apply(Heartbeat{At: 10, IDs: []string{"a"}})
	id := a.apply(Incidents{At: 30, Opens: []Open{{Service: "a", LastSeen: 10}}}).(Opened)[0]
	a.apply(ActionResult{At: 35, Service: "a", Incident: id, Action: "page", Event: EventDown, State: ActionDone, Attempts: 1})
	// A second result for the same run (a new leader that re-ran it) changes nothing.
	a.apply(ActionResult{At: 36, Service: "a", Incident: id, Action: "page", Event: EventDown, State: ActionFailed, Error: "x"})
	if p := a.f.PendingActions(); len(p) != 0 {
		t.Fatalf("pending after result = %+v", p)
	}
	a.apply(Heartbeat{At: 40, IDs: []string{"a"}})
	s := a.service("a")
	inc := s.Current()
	if s.Status != StatusUp || inc.Resolved != 40 {
		t.Fatalf("after recovery: %+v", s)
	}
	if inc.Actions[0].State != ActionDone || inc.Actions[0].Finished != 35 {
		t.Fatalf("down run = %+v", inc.Actions[0])
	}
	p := a.f.PendingActions()
	if len(p) != 1 || p[0].Run.Event != EventRecovered || p[0].Run.Action != "log" {
		t.Fatalf("pending after recovery = %+v", p)
	}
}

func TestConfigureDefinesAndReverts(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 5, IDs: []string{"auto"}})
	cfg := Configure{At: 7, Defaults: Definition{Timeout: 3 * time.Second},
		Services: map[string]Definition{"worker-1": {Timeout: time.Second, Actions: []string{"restart"}}}}
	a.apply(cfg)
	if !a.f.Configured(cfg) {
		t.Fatal("Configured should hold right after applying the same configuration")
	}
	w := a.service("worker-1")
	if w.Source != SourceConfig || w.Def.Timeout != time.Second || w.LastSeen != 7 || w.Status != StatusUp {
		t.Fatalf("worker-1 = %+v", w)
	}
	if d := a.service("auto").Def; d.Timeout != 3*time.Second {
		t.Fatalf("auto did not follow the new defaults: %+v", d)
	}
	a.apply(Configure{At: 8, Defaults: cfg.Defaults})
	if w := a.service("worker-1"); w.Source != SourceHeartbeat || w.Def.Timeout != 3*time.Second {
		t.Fatalf("worker-1 removed from config should be on defaults: %+v", w)
	}
	if a.f.Configured(cfg) {
		t.Fatal("Configured should be false after the configuration changed")
	}
}

func TestPauseAndResume(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 10, IDs: []string{"a"}})
	if err := a.apply(Pause{At: 11, Service: "nope", Paused: true}); err == nil {
		t.Fatal("pausing an unknown service should fail")
	}
	a.apply(Pause{At: 11, Service: "a", Paused: true})
	if due, _ := a.f.Overdue(time.Unix(0, 1e12), time.Time{}); len(due) != 0 {
		t.Fatalf("paused service is overdue: %+v", due)
	}
	a.apply(Pause{At: 50, Service: "a", Paused: false})
	if s := a.service("a"); s.Status != StatusUp || s.LastSeen != 50 {
		t.Fatalf("resumed = %+v", s)
	}
}

func TestOverdueHonoursFailoverGrace(t *testing.T) {
	a := newApplier(t)
	a.apply(Configure{At: 0, Defaults: Definition{Timeout: 3 * time.Second}})
	base := time.Unix(1000, 0)
	a.apply(Heartbeat{At: base.UnixNano(), IDs: []string{"a"}})
	now := base.Add(5 * time.Second)
	if due, _ := a.f.Overdue(now, base); len(due) != 1 {
		t.Fatalf("due = %+v, want a", due)
	}
	// A leader that took over at base+4s gives a until base+7s.
	due, next := a.f.Overdue(now, base.Add(4*time.Second))
	if len(due) != 0 || !next.Equal(base.Add(7*time.Second)) {
		t.Fatalf("due = %+v next = %v, want none and base+7s", due, next)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	a := randomHistory(t, rand.New(rand.NewPCG(1, 2)), 400)
	restored := New()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(persist(t, a.f)))); err != nil {
		t.Fatal(err)
	}
	assertSameState(t, a.f, restored)
	svcs := restored.Services()
	var shared *Definition
	for _, s := range svcs {
		if s.Source != SourceHeartbeat {
			continue
		}
		if shared == nil {
			shared = s.Def
		} else if s.Def != shared {
			t.Fatal("restored services on the defaults do not share their Definition")
		}
	}
}

func TestRestoreRefusesBadSnapshotsAndKeepsState(t *testing.T) {
	a := randomHistory(t, rand.New(rand.NewPCG(3, 4)), 50)
	good := persist(t, a.f)
	lines := strings.SplitN(string(good), "\n", 3)
	bad := map[string]string{
		"empty":       "",
		"version":     strings.Replace(lines[0], `"v":2`, `"v":9`, 1) + "\n",
		"truncated":   lines[0] + "\n" + lines[1] + "\n",
		"garbage":     "{not json",
		"trailing":    string(good) + `{"id":"extra"}` + "\n",
		"bad status":  lines[0] + "\n" + strings.Replace(lines[1], `"status":"`, `"status":"x`, 1) + "\n" + lines[2],
		"missing ids": lines[0] + "\n" + strings.Replace(lines[1], `"id":"`, `"xid":"`, 1) + "\n" + lines[2],
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			before := a.f.Services()
			if err := a.f.Restore(io.NopCloser(strings.NewReader(data))); err == nil {
				t.Fatal("restore accepted a bad snapshot")
			}
			if after := a.f.Services(); !reflect.DeepEqual(before, after) {
				t.Fatal("a failed restore changed the state")
			}
		})
	}
}

func TestTwoFSMsFedTheSameLogAgree(t *testing.T) {
	a := randomHistory(t, rand.New(rand.NewPCG(5, 6)), 1000)
	b := New()
	for _, l := range a.log {
		b.Apply(l)
	}
	assertSameState(t, a.f, b)
	if !bytes.Equal(canonical(t, a.f), canonical(t, b)) {
		t.Fatal("same log, different state")
	}
}

func TestApplyRefusesUnknownAndSkipsIgnorable(t *testing.T) {
	f := New()
	if got := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{byte(Ignorable | 0x33), 1, '{', '}'}}); got != nil {
		t.Fatalf("ignorable command returned %v", got)
	}
	for name, data := range map[string][]byte{
		"unknown kind":    {0x33, 1},
		"unknown version": {byte(KindHeartbeat), 9},
		"short":           {byte(KindHeartbeat)},
		"bad heartbeat":   {byte(KindHeartbeat), 1, 2, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("Apply did not stop on an entry it cannot apply")
				}
			}()
			f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: data})
		})
	}
}

func TestDecodeHeartbeatRejectsHostileInput(t *testing.T) {
	good, _ := Encode(Heartbeat{At: 12345, IDs: []string{"a", "bb"}})
	for i := range len(good) {
		if _, err := Decode(good[:i]); err == nil {
			t.Fatalf("accepted %d of %d bytes", i, len(good))
		}
	}
	huge := []byte{byte(KindHeartbeat), 1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := Decode(huge); err == nil {
		t.Fatal("accepted an impossible count")
	}
	c, err := Decode(good)
	if err != nil || !reflect.DeepEqual(c, Heartbeat{At: 12345, IDs: []string{"a", "bb"}}) {
		t.Fatalf("round trip = %+v, %v", c, err)
	}
}
