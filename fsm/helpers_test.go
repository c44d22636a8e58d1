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
		switch r.IntN(15) {
		case 0:
			a.apply(Configure{At: now, Defaults: Definition{Timeout: time.Duration(1+r.IntN(3)) * time.Second, Actions: []string{"log"}, OnRecovered: []string{"log"}},
				Services:          map[string]Definition{id(): {Timeout: time.Second, Actions: []string{"page", "log"}}},
				HistoryPerService: 3 + r.IntN(10)})
		case 10:
			if r.IntN(3) == 0 {
				// Scheduled, and depending on another: cycles included,
				// which Apply must survive though the API refuses them.
				a.apply(Define{At: now, Service: id(), Def: Definition{Schedule: []string{"*/2 * * * *", "30 2 * * *", "@hourly"}[r.IntN(3)],
					TZ: "Europe/Berlin", Grace: time.Duration(1+r.IntN(3)) * time.Second, Actions: []string{"page"},
					OnRecovered: []string{"log"}, DependsOn: []string{id()}}})
				continue
			}
			a.apply(Define{At: now, Service: id(), Def: Definition{Timeout: time.Second, Actions: []string{"page"}, OnRecovered: []string{"log"},
				Grace: time.Duration(r.IntN(2)) * time.Second, Repeat: time.Duration(r.IntN(3)) * time.Second, MaxRepeats: r.IntN(3),
				FlapThreshold: r.IntN(3), FlapWindow: 20 * time.Second}})
		case 11:
			if r.IntN(4) == 0 {
				a.apply(Delete{At: now, Service: id()})
			}
		case 12, 13:
			repeats, stable, _ := a.f.Due(time.Unix(0, now))
			a.apply(Repeats{At: now, Items: repeats})
			a.apply(Stable{At: now, Items: stable})
			ended, _ := a.f.WindowsDue(time.Unix(0, now))
			a.apply(WindowEnd{At: now, Items: ended})
		case 14:
			if p := a.f.PendingActions(); len(p) > 0 {
				x := p[r.IntN(len(p))]
				a.apply(Attempt{At: now, Service: x.Service, Incident: x.Incident, Action: x.Run.Action, Event: x.Run.Event, Attempt: 1, Error: "503"})
			}
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
				a.apply(ActionResult{At: now, Service: x.Service, Incident: x.Incident, Action: x.Run.Action, Event: x.Run.Event, Repeat: x.Run.Repeat, State: ActionDone, Attempts: 1})
			}
		case 4:
			if r.IntN(2) == 0 {
				a.apply(Pause{At: now, Service: id(), Paused: r.IntN(2) == 0})
				break
			}
			// Maintenance windows: some end, some hold until resumed.
			until := now + int64(r.IntN(3))*int64(time.Second)
			a.apply(Window{At: now, Services: []string{id(), id()}, Paused: r.IntN(3) != 0, Until: until})
		case 9:
			// Pings: every signal, on services up, down, paused or new.
			sig := []string{SignalStart, SignalSuccess, SignalFail}[r.IntN(3)]
			a.apply(Ping{At: now, Service: id(), Signal: sig, ExitStatus: r.IntN(3), RunID: "r", Note: "n"})
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
	events, _ := f.AllEvents(0, 0, 0)
	f.mu.RLock()
	n, seq := f.historyN, f.seq
	f.mu.RUnlock()
	b, err := json.Marshal(struct {
		D   *Definition
		S   []Service
		P   []PendingAction
		E   []ServiceRecord
		N   int
		Seq uint64
	}{f.defaults, f.Services(), f.PendingActions(), events, n, seq})
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
	if a, _ := want.AllEvents(0, 0, 0); !reflect.DeepEqual(a, must(got.AllEvents(0, 0, 0))) {
		t.Fatal("histories differ")
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

func must[T any](v T, _ bool) T { return v }
