package fsm_test

// Helpers of the fuzz targets in fuzz_test.go: machineRun, which turns fuzz
// input into log entries, and the comparisons of FSM states and responses.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
)

// machineRun turns fuzz input into log entries: a byte code chooses each
// step and the bytes after it fill it in. Most steps build commands from
// the current state (an incident for a service at its real last heartbeat,
// a result for an action really pending, a repeat really due), which random
// bytes would almost never hit; one step is a raw entry, kept only if
// Decode accepts it (Apply panics on anything else, by design).
type machineRun struct {
	t     testing.TB
	in    []byte
	now   int64 // the proposing leader's clock
	index uint64
	// a and b get every entry; c, once set, was restored from a snapshot
	// of a and gets every entry after it.
	a, b, c *fsm.FSM
	steps   int
	// quiet feeds a alone, and takes no snapshot on the way.
	quiet bool
}

// maxSteps bounds one run, so every input executes quickly.
const maxSteps = 300

func newMachineRun(t testing.TB, in []byte) *machineRun {
	return &machineRun{t: t, in: in, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(),
		a: fsm.New(), b: fsm.New()}
}

func (m *machineRun) byte() byte {
	if len(m.in) == 0 {
		return 0
	}
	c := m.in[0]
	m.in = m.in[1:]
	return c
}

func (m *machineRun) take(n int) []byte {
	n = min(n, len(m.in))
	b := m.in[:n]
	m.in = m.in[n:]
	return b
}

// service picks one of a few ids, few enough that steps meet.
func (m *machineRun) service() string {
	pool := [...]string{"web", "db", "cron", "worker-1", "worker-2", "batch.job", "x"}
	return pool[int(m.byte())%len(pool)]
}

// actions picks a subset of three actions; nil for none, as when the
// config file leaves the list out.
func (m *machineRun) actions() []string {
	var out []string
	bits := m.byte()
	for i, a := range [...]string{"log", "page", "restart"} {
		if bits&(1<<i) != 0 {
			out = append(out, a)
		}
	}
	return out
}

// definition is one that Definition.Check accepts, as the config file and
// the API only propose those; with the restart policy half of the time.
func (m *machineRun) definition() fsm.Definition {
	d := fsm.Definition{Timeout: time.Duration(1+m.byte()%30) * time.Second, Actions: m.actions(), OnRecovered: m.actions()}
	if policy := m.byte(); policy&1 != 0 {
		d.Grace = time.Duration(policy>>1&3) * time.Second
		d.Repeat = time.Duration(policy>>3&3) * 5 * time.Second
		d.MaxRepeats = int(policy >> 5 & 3)
		if n := m.byte() % 4; n > 0 {
			d.FlapThreshold, d.FlapWindow = int(n), time.Duration(10+m.byte()%50)*time.Second
		}
	}
	return d
}

// step applies one entry; it reports false when the input is used up.
func (m *machineRun) step() bool {
	if len(m.in) == 0 || m.steps >= maxSteps {
		return false
	}
	m.steps++
	op := m.byte()
	m.now += int64(m.byte()) * int64(100*time.Millisecond)
	var cmds []fsm.Command
	switch op % 14 {
	case 0, 1:
		ids := make([]string, 1+m.byte()%3)
		for i := range ids {
			ids[i] = m.service()
		}
		// Now and then a little in the past: an entry can carry a time
		// older than what is committed (another leader's clock).
		cmds = append(cmds, fsm.Heartbeat{At: m.now - int64(m.byte()%4)*int64(time.Second), IDs: ids})
	case 2:
		c := fsm.Configure{At: m.now, Defaults: m.definition()}
		for n := m.byte() % 3; n > 0; n-- {
			if c.Services == nil {
				c.Services = make(map[string]fsm.Definition)
			}
			c.Services[m.service()] = m.definition()
		}
		if h := m.byte(); h&1 != 0 {
			c.HistoryPerService = 1 + int(h>>1)%6
		}
		cmds = append(cmds, c)
	case 3, 4:
		// What the watcher proposes, from Overdue at this time, plus a
		// choice of services at their last heartbeat (most no longer
		// overdue by then, as when a heartbeat wins the race).
		due, _ := m.a.Overdue(time.Unix(0, m.now), time.Time{})
		bits := m.byte()
		for i, s := range m.a.Services() {
			if bits&(1<<(i%8)) != 0 {
				due = append(due, fsm.Open{Service: s.ID, LastSeen: s.LastSeen})
			}
		}
		cmds = append(cmds, fsm.Incidents{At: m.now, Opens: due})
	case 5, 6:
		pending := m.a.PendingActions()
		pick, how := int(m.byte()), m.byte()
		if len(pending) == 0 {
			cmds = append(cmds, fsm.ActionResult{At: m.now, Service: m.service(), Incident: "1-0", Action: "log", Event: fsm.EventDown, State: fsm.ActionDone})
			break
		}
		p := pending[pick%len(pending)]
		r := fsm.ActionResult{At: m.now, Service: p.Service, Incident: p.Incident, Action: p.Run.Action,
			Event: p.Run.Event, Repeat: p.Run.Repeat, State: fsm.ActionDone, Attempts: 1 + int(how%4)}
		if how&0x10 != 0 {
			r.State, r.Error = fsm.ActionFailed, "exit status 1"
		}
		if how&0x20 != 0 {
			cmds = append(cmds, fsm.Attempt{At: m.now, Service: p.Service, Incident: p.Incident, Action: p.Run.Action,
				Event: p.Run.Event, Repeat: p.Run.Repeat, Attempt: 1, Error: "connection refused"})
		}
		cmds = append(cmds, r)
	case 7:
		cmds = append(cmds, fsm.Pause{At: m.now, Service: m.service(), Paused: m.byte()%2 == 0})
	case 8:
		// What the watcher proposes from Due; a skew byte proposes it
		// early or with the wrong count, as a stale leader might.
		repeats, stable, _ := m.a.Due(time.Unix(0, m.now))
		if skew := m.byte(); skew&1 != 0 {
			for i := range repeats {
				repeats[i].N += int(skew>>1&3) - 1
			}
			for i := range stable {
				stable[i].Changed -= int64(skew >> 3)
			}
		}
		cmds = append(cmds, fsm.Repeats{At: m.now, Items: repeats}, fsm.Stable{At: m.now, Items: stable})
	case 9:
		cmds = append(cmds, fsm.Define{At: m.now, Service: m.service(), Def: m.definition()})
	case 10:
		cmds = append(cmds, fsm.Delete{At: m.now, Service: m.service()})
	case 11, 12:
		m.raw()
		return true
	case 13:
		if !m.quiet {
			m.checkpoint()
		}
		return true
	}
	for _, c := range cmds {
		m.applyAll(&raft.Log{Type: raft.LogCommand, Data: mustEncode(m.t, c)})
	}
	return true
}

// raw applies an entry copied from the input, or a log entry of another
// type, which Apply must ignore.
func (m *machineRun) raw() {
	n, typ := m.byte(), m.byte()
	data := bytes.Clone(m.take(int(n)))
	l := &raft.Log{Type: raft.LogCommand, Data: data}
	if typ%4 == 3 {
		l.Type = raft.LogType(typ / 4 % 8)
	}
	if l.Type == raft.LogCommand && len(data) > 0 {
		c, err := fsm.Decode(data)
		ignorable := errors.Is(err, fsm.ErrUnknownKind) && fsm.Kind(data[0])&fsm.Ignorable != 0
		if err != nil && !ignorable {
			return // undecodable: Apply is documented to panic on it
		}
		if hb, ok := c.(fsm.Heartbeat); ok && slices.ContainsFunc(hb.IDs, func(id string) bool { return !fsm.ValidID(id) }) {
			// No leader commits one: every route refuses such an id
			// (fsm.ValidID) before it is batched. The binary heartbeat
			// keeps an id's bytes as they are, and a snapshot (JSON) would
			// not, so the restored state could not be compared.
			return
		}
	}
	m.applyAll(l)
}

// checkpoint restores c from a snapshot of a, as Raft does for a follower
// that fell behind.
func (m *machineRun) checkpoint() {
	m.c = fsm.New()
	if err := m.c.Restore(io.NopCloser(bytes.NewReader(persist(m.t, m.a)))); err != nil {
		m.t.Fatalf("after %d entries: restoring a snapshot of the state: %v", m.index, err)
	}
	assertSameState(m.t, fmt.Sprintf("restored after entry %d", m.index), m.a, m.c, m.now, false)
}

func (m *machineRun) applyAll(l *raft.Log) {
	m.index++
	l.Index, l.Term = m.index, 1
	ra := applyOne(m.t, m.a, l)
	if !m.quiet {
		if rb := applyOne(m.t, m.b, l); !sameResponse(ra, rb) {
			m.t.Fatalf("entry %d %q: responses differ: %v and %v", l.Index, l.Data, ra, rb)
		}
		assertSameState(m.t, fmt.Sprintf("entry %d %q", l.Index, l.Data), m.a, m.b, m.now, true)
	}
	if m.c != nil {
		if rc := applyOne(m.t, m.c, l); !sameResponse(ra, rc) {
			m.t.Fatalf("entry %d %q: response %v, but %v from the FSM restored from a snapshot", l.Index, l.Data, ra, rc)
		}
	}
}

// finish compares the FSM restored from a snapshot with the others.
func (m *machineRun) finish() {
	if m.c != nil {
		assertSameState(m.t, "at the end, restored from a snapshot", m.a, m.c, m.now, false)
	}
}

// applyOne applies l, turning a panic into a failure that names the entry.
func applyOne(t testing.TB, f *fsm.FSM, l *raft.Log) (resp any) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Apply of entry %d (type %v, %q) panicked: %v\n%s", l.Index, l.Type, l.Data, r, debug.Stack())
		}
	}()
	return f.Apply(l)
}

func sameResponse(a, b any) bool {
	ea, aErr := a.(error)
	eb, bErr := b.(error)
	if aErr || bErr {
		return aErr && bErr && ea.Error() == eb.Error()
	}
	return reflect.DeepEqual(a, b)
}

// view is everything the FSM's readers show, at one time.
type view struct {
	Services []fsm.Service
	Pending  []fsm.PendingAction
	Defaults fsm.Definition
	Events   []fsm.ServiceRecord
	Overdue  []fsm.Open
	Next     time.Time
	Repeats  []fsm.RepeatDue
	Stable   []fsm.StableDue
	NextDue  time.Time
}

// observe reads f as the API and the leader's watcher do, at now (Unix ns).
func observe(f *fsm.FSM, now int64) view {
	v := view{Services: f.Services(), Pending: f.PendingActions(), Defaults: f.Defaults()}
	v.Events, _ = f.AllEvents(0, 0, 0)
	v.Overdue, v.Next = f.Overdue(time.Unix(0, now), time.Unix(0, now-int64(5*time.Second)))
	v.Repeats, v.Stable, v.NextDue = f.Due(time.Unix(0, now))
	return v
}

// assertSameState compares what readers see of two FSMs at now. Exactly
// when both were fed the same entries; otherwise (one was restored from a
// snapshot) an empty list and a missing one are the same thing, as the
// snapshot's JSON leaves empty lists out.
func assertSameState(t testing.TB, what string, want, got *fsm.FSM, now int64, exact bool) {
	t.Helper()
	w, g := observe(want, now), observe(got, now)
	checkSeqs(t, what, w.Events)
	checkSeqs(t, what, g.Events)
	same := reflect.DeepEqual(w, g)
	if !exact {
		same = sameValue(reflect.ValueOf(w), reflect.ValueOf(g))
	}
	if same {
		return
	}
	wv, gv := reflect.ValueOf(w), reflect.ValueOf(g)
	for i := range wv.NumField() {
		if !sameValue(wv.Field(i), gv.Field(i)) || exact && !reflect.DeepEqual(wv.Field(i).Interface(), gv.Field(i).Interface()) {
			t.Fatalf("%s: %s differ:\nwant %s\ngot  %s", what, wv.Type().Field(i).Name, dump(wv.Field(i)), dump(gv.Field(i)))
		}
	}
}

// checkSeqs insists that every event has its own Seq: readers page through
// the events with Seq as a cursor (AllEvents' after), and order them by it.
func checkSeqs(t testing.TB, what string, events []fsm.ServiceRecord) {
	t.Helper()
	for i := 1; i < len(events); i++ {
		if a, b := events[i-1], events[i]; a.Seq >= b.Seq {
			t.Fatalf("%s: events of %q and %q share Seq %d: their order, and paging by Seq, are undefined", what, a.Service, b.Service, b.Seq)
		}
	}
}

// dump prints a value with the definitions its services point to.
func dump(v reflect.Value) string {
	svcs, ok := v.Interface().([]fsm.Service)
	if !ok {
		return fmt.Sprintf("%+v", v.Interface())
	}
	var b bytes.Buffer
	for _, s := range svcs {
		fmt.Fprintf(&b, "\n  %+v def=%+v", s, s.Def)
	}
	return b.String()
}

// sameValue is reflect.DeepEqual except that a nil slice or map equals an
// empty one: JSON with omitempty writes neither, so a round trip may turn
// one into the other without changing what a command or record means.
func sameValue(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !sameValue(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Struct:
		if a.Type() == reflect.TypeFor[time.Time]() {
			return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
		}
		for i := range a.NumField() {
			if !a.Type().Field(i).IsExported() {
				continue // bookkeeping such as a heap position, not state
			}
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

func mustEncode(t testing.TB, c fsm.Command) []byte {
	b, err := fsm.Encode(c)
	if err != nil {
		if t == nil {
			panic(err)
		}
		t.Fatalf("Encode(%#v): %v", c, err)
	}
	return b
}

func persist(t testing.TB, f *fsm.FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &bufferSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatalf("persist: %v", err)
	}
	return sink.Bytes()
}

// bufferSink is a raft.SnapshotSink in memory.
type bufferSink struct{ bytes.Buffer }

func (*bufferSink) ID() string    { return "fuzz" }
func (*bufferSink) Cancel() error { return nil }
func (*bufferSink) Close() error  { return nil }

var _ raft.SnapshotSink = (*bufferSink)(nil)
