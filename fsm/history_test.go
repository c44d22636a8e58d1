package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// wantEvents checks that want appears, in order, in the service's history.
func wantEvents(t *testing.T, f *FSM, id string, want ...Event) {
	t.Helper()
	h, _ := f.Events(id, 0)
	var got []Event
	i := 0
	for _, r := range h {
		got = append(got, r.Event)
		if i < len(want) && r.Event == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Fatalf("history of %s = %v, want %v in that order", id, got, want)
	}
}

func TestHistoryRecordsChangesNotHeartbeats(t *testing.T) {
	a := newApplier(t)
	a.apply(Configure{At: 1, Defaults: Definition{Timeout: sec, Actions: []string{"page"}, OnRecovered: []string{"page"}}})
	for i := range 50 {
		a.apply(Heartbeat{At: int64(i+2) * sec / 10, IDs: []string{"quiet", "busy"}})
	}
	if h, ok := a.f.Events("quiet", 0); !ok || len(h) != 0 || len(a.f.events) != 0 {
		t.Fatalf("heartbeats that change nothing made events: %v (%d histories)", h, len(a.f.events))
	}
	id := a.downAt("busy", 10*sec)
	a.apply(Attempt{At: 11 * sec, Service: "busy", Incident: id, Action: "page", Event: EventDown, Attempt: 1, Error: "503"})
	a.finishAll(12 * sec)
	a.apply(Heartbeat{At: 13 * sec, IDs: []string{"busy"}})
	a.apply(Pause{At: 14 * sec, Service: "busy", Paused: true})
	a.apply(Pause{At: 15 * sec, Service: "busy", Paused: true}) // no change, no event
	a.apply(Pause{At: 16 * sec, Service: "busy"})
	h, _ := a.f.Events("busy", 0)
	want := []Record{
		{Seq: 1, At: 10 * sec, Event: EventDown, Incident: id},
		{Seq: 2, At: 11 * sec, Event: EventAttempt, Incident: id, Action: "page", For: EventDown, Attempts: 1, Error: "503"},
		{Seq: 3, At: 12 * sec, Event: EventDelivery, Incident: id, Action: "page", For: EventDown, State: ActionDone, Attempts: 1},
		{Seq: 4, At: 13 * sec, Event: EventRecovered, Incident: id},
		{Seq: 5, At: 14 * sec, Event: EventPaused},
		{Seq: 6, At: 16 * sec, Event: EventResumed},
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("history\n got %+v\nwant %+v", h, want)
	}
	if h, _ := a.f.Events("busy", 13*sec); len(h) != 3 || h[0].Seq != 4 {
		t.Fatalf("since 13s: %+v", h)
	}
}

func TestHistoryIsBoundedPerService(t *testing.T) {
	a := newApplier(t)
	a.apply(Configure{At: 1, Defaults: Definition{Timeout: sec}, HistoryPerService: 7})
	a.apply(Heartbeat{At: 1, IDs: []string{"a", "b"}})
	for i := range 40 {
		a.apply(Pause{At: int64(i + 2), Service: "a", Paused: i%2 == 0})
		if i < 3 {
			a.apply(Pause{At: int64(i + 2), Service: "b", Paused: i%2 == 0})
		}
	}
	h, _ := a.f.Events("a", 0)
	if len(h) != 7 || h[6].At != 41 || h[0].At != 35 {
		t.Fatalf("a keeps %d events, %+v; want the last 7", len(h), h)
	}
	if h, _ := a.f.Events("b", 0); len(h) != 3 {
		t.Fatalf("b keeps %d events, want its 3", len(h))
	}
	// A smaller bound trims at once, on every node alike.
	a.apply(Configure{At: 50, Defaults: Definition{Timeout: sec}, HistoryPerService: 2})
	if h, _ := a.f.Events("a", 0); len(h) != 2 || h[1].At != 41 {
		t.Fatalf("after shrinking the bound: %+v", h)
	}
	all, more := a.f.AllEvents(0, 0, 0)
	if len(all) != 4 || more || all[0].Service != "b" || all[3].Service != "a" {
		t.Fatalf("all events: %+v", all)
	}
	page, more := a.f.AllEvents(0, all[0].Seq, 2)
	if !more || len(page) != 2 || page[0].Seq != all[1].Seq {
		t.Fatalf("page after %d: %+v more=%v", all[0].Seq, page, more)
	}
}

func TestHistorySurvivesSnapshotAndRestore(t *testing.T) {
	a := newApplier(t)
	a.apply(Configure{At: 1, Defaults: Definition{Timeout: sec, Actions: []string{"page"}}, HistoryPerService: 5})
	a.apply(Define{At: 2, Service: "api-svc", Def: Definition{Timeout: sec, Repeat: time.Second, Tags: []string{"x"}}})
	a.apply(Heartbeat{At: 3, IDs: []string{"beat"}})
	for i := range 6 {
		a.downAt("beat", int64(i+10)*sec)
		a.apply(Heartbeat{At: int64(i+10)*sec + 1, IDs: []string{"beat"}})
	}
	data := persist(t, a.f)
	b := New()
	if err := b.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	assertSameState(t, a.f, b)
	if s, _ := b.Service("api-svc"); s.Source != SourceAPI || s.Def.Repeat != time.Second {
		t.Fatalf("restored api-svc = %+v", s)
	}
	// Both go on numbering events from the same place.
	for _, f := range []*FSM{a.f, b} {
		f.mu.Lock()
		f.record(f.services["beat"], Record{At: 99, Event: EventPaused})
		f.mu.Unlock()
	}
	assertSameState(t, a.f, b)
}

func TestRestoreVersion1Snapshot(t *testing.T) {
	v1 := `{"v":1,"defaults":{"timeout":2000000000,"actions":["log"]},"count":2}
{"id":"auto","status":"up","last_seen":5}
{"id":"cfg","def":{"timeout":1000000000,"actions":["page"]},"configured":true,"status":"down","last_seen":3,"incidents":[{"id":"9-0","opened":4,"last_seen":3,"actions":[{"action":"page","event":"down","state":"pending"}]}]}
`
	f := New()
	if err := f.Restore(io.NopCloser(strings.NewReader(v1))); err != nil {
		t.Fatal(err)
	}
	auto, _ := f.Service("auto")
	cfg, _ := f.Service("cfg")
	if auto.Source != SourceHeartbeat || auto.Def.Timeout != 2*time.Second || cfg.Source != SourceConfig || cfg.Def.Timeout != time.Second {
		t.Fatalf("restored auto %+v cfg %+v", auto, cfg)
	}
	if p := f.PendingActions(); len(p) != 1 || p[0].Incident != "9-0" {
		t.Fatalf("pending after a v1 restore: %+v", p)
	}
	// And it is written back as version 2, which restores the same.
	g := New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(persist(t, f)))); err != nil {
		t.Fatal(err)
	}
	assertSameState(t, f, g)
}

func TestDefineAndDeleteRespectTheConfigFile(t *testing.T) {
	a := newApplier(t)
	a.apply(Configure{At: 1, Defaults: Definition{Timeout: sec},
		Services: map[string]Definition{"cfg": {Timeout: 2 * time.Second}}})
	def := Definition{Timeout: 5 * time.Second, Actions: []string{"page"}, Tags: []string{"batch"}}
	for _, c := range []Command{Define{At: 2, Service: "cfg", Def: def}, Delete{At: 2, Service: "cfg"}} {
		if err, _ := a.apply(c).(error); !errors.Is(err, ErrDefinedByConfig) {
			t.Fatalf("%T of a configured service: %v, want ErrDefinedByConfig", c, err)
		}
	}
	if s := a.service("cfg"); s.Def.Timeout != 2*time.Second || s.Source != SourceConfig {
		t.Fatalf("cfg changed: %+v", s)
	}
	if err, _ := a.apply(Define{At: 3, Service: "bad", Def: Definition{Timeout: sec, FlapThreshold: 3}}).(error); !errors.Is(err, ErrBadDefinition) {
		t.Fatalf("bad definition: %v", err)
	}
	if _, ok := a.f.Service("bad"); ok {
		t.Fatal("a refused definition created its service")
	}
	a.apply(Define{At: 3, Service: "api", Def: def})
	a.apply(Define{At: 4, Service: "api", Def: def}) // retried: no change, no event
	if s := a.service("api"); s.Source != SourceAPI || s.LastSeen != 3 || !s.Def.Equal(&def) {
		t.Fatalf("api = %+v", s)
	}
	if h, _ := a.f.Events("api", 0); len(h) != 1 {
		t.Fatalf("a repeated Define recorded %d events", len(h))
	}
	// The file no longer defining cfg leaves api alone; the file taking
	// over api's id wins over the API.
	a.apply(Configure{At: 5, Defaults: Definition{Timeout: sec}, Services: map[string]Definition{"api": {Timeout: 7 * time.Second}}})
	if s := a.service("cfg"); s.Source != SourceHeartbeat || s.Def.Timeout != time.Second {
		t.Fatalf("cfg after leaving the file: %+v", s)
	}
	if s := a.service("api"); s.Source != SourceConfig || s.Def.Timeout != 7*time.Second {
		t.Fatalf("api after the file defined it: %+v", s)
	}
	a.apply(Heartbeat{At: 6, IDs: []string{"gone"}})
	a.downAt("gone", 10*sec)
	if err := a.apply(Delete{At: 11, Service: "gone"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.f.Service("gone"); ok || len(a.f.PendingActions()) != 0 || a.f.Len() != 2 {
		t.Fatal("a deleted service lingers")
	}
	if h, ok := a.f.Events("gone", 0); ok || h != nil {
		t.Fatalf("a deleted service's history lingers: %v", h)
	}
	if err, _ := a.apply(Delete{At: 12, Service: "gone"}).(error); !errors.Is(err, ErrUnknownService) {
		t.Fatalf("second delete: %v", err)
	}
	if due, _ := a.f.Overdue(time.Unix(0, 100*sec), time.Time{}); len(due) != 2 {
		t.Fatalf("overdue after delete: %v", due)
	}
}

// BenchmarkAllEvents pages through the history of 100 000 services that
// each went down and came back once (2 events each): the cost of one
// GET /v1/events?limit=1000, and the heap the histories take.
func BenchmarkAllEvents(b *testing.B) {
	const n = 100_000
	f := New()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("service-%07d", i)
	}
	index := uint64(0)
	apply := func(c Command) {
		data, _ := Encode(c)
		index++
		f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data})
	}
	apply(Heartbeat{At: sec, IDs: ids})
	before := heapInUse()
	opens := make([]Open, n)
	for i, id := range ids {
		opens[i] = Open{Service: id, LastSeen: sec}
	}
	apply(Incidents{At: 20 * sec, Opens: opens})
	apply(Heartbeat{At: 30 * sec, IDs: ids})
	perService := float64(heapInUse()-before) / n
	b.ResetTimer()
	for range b.N {
		if page, more := f.AllEvents(0, uint64(n), 1000); len(page) != 1000 || !more {
			b.Fatalf("page of %d", len(page))
		}
	}
	b.ReportMetric(perService, "B/service-with-2-events")
}
