package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// randomHistory applies n random commands touching a few dozen services.
func randomHistory(t *testing.T, r *rand.Rand, n int) *applier {
	t.Helper()
	a := newApplier(t)
	id := func() string { return fmt.Sprintf("svc-%d", r.IntN(30)) }
	now := int64(0)
	for range n {
		now += int64(r.IntN(int(time.Second)))
		switch r.IntN(10) {
		case 0:
			a.apply(Configure{At: now, Defaults: Definition{Timeout: time.Duration(1+r.IntN(3)) * time.Second, Actions: []string{"log"}, OnRecovered: []string{"log"}},
				Services: map[string]Definition{id(): {Timeout: time.Second, Actions: []string{"page", "log"}}}})
		case 1, 2:
			var opens []Open
			for _, s := range a.f.Services() {
				if s.Status == StatusUp && r.IntN(2) == 0 {
					opens = append(opens, Open{Service: s.ID, LastSeen: s.LastSeen})
				}
			}
			a.apply(Incidents{At: now, Opens: opens})
		case 3:
			if p := a.f.PendingActions(); len(p) > 0 {
				x := p[r.IntN(len(p))]
				a.apply(ActionResult{At: now, Service: x.Service, Incident: x.Incident, Action: x.Run.Action, Event: x.Run.Event, State: ActionDone, Attempts: 1})
			}
		case 4:
			a.apply(Pause{At: now, Service: id(), Paused: r.IntN(2) == 0})
		default:
			a.apply(Heartbeat{At: now - int64(r.IntN(int(time.Second))), IDs: []string{id(), id()}})
		}
	}
	return a
}

func persist(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// canonical renders the state in a form that does not depend on map order.
func canonical(t *testing.T, f *FSM) []byte {
	t.Helper()
	b, err := json.Marshal(struct {
		D *Definition
		S []Service
		P []PendingAction
	}{f.defaults, f.Services(), f.PendingActions()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func assertSameState(t *testing.T, want, got *FSM) {
	t.Helper()
	if !reflect.DeepEqual(want.Services(), got.Services()) {
		t.Fatal("services differ")
	}
	if !reflect.DeepEqual(want.PendingActions(), got.PendingActions()) {
		t.Fatal("pending actions differ")
	}
	if !bytes.Equal(canonical(t, want), canonical(t, got)) {
		t.Fatal("states differ")
	}
}

type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

var _ raft.SnapshotSink = (*memSink)(nil)
