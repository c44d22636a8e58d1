package fsm_test

// Fuzz targets for what a node takes from outside itself: log entries
// (Decode, Apply) and snapshots (Restore). Entries and snapshots reach a
// node from its peers, so they must never crash it, and every node fed the
// same entries must end in the same state. Run one with
//
//	go test -run '^$' -fuzz '^FuzzApply$' -fuzztime 20s ./fsm
//
// or all of them with scripts/fuzz.sh. A crasher is written under
// testdata/fuzz/<Name>/ and from then on runs with every go test.

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
)

// FuzzDecodeCommand feeds arbitrary bytes to Decode: it must never panic,
// it must refuse with one of its two documented errors (Apply tells them
// apart to skip an ignorable kind), and what it accepts must survive Encode
// and Decode unchanged, because the leader encodes what followers decode.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		b := mustEncode(f, c)
		for n := range len(b) + 1 {
			f.Add(b[:n])
		}
	}
	// An empty JSON body under every kind byte: a valid encoding of every
	// JSON kind, including kinds added after this test was written.
	for k := range 256 {
		f.Add([]byte{byte(k), 1, '{', '}'})
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := fsm.Decode(b)
		if err != nil {
			if c != nil {
				t.Fatalf("Decode returned %#v along with error %v", c, err)
			}
			if !errors.Is(err, fsm.ErrCorrupt) && !errors.Is(err, fsm.ErrUnknownKind) {
				t.Fatalf("Decode error %q is neither ErrCorrupt nor ErrUnknownKind", err)
			}
			return
		}
		if c.Kind() != fsm.Kind(b[0]) {
			t.Fatalf("entry of kind %d decoded as %T, of kind %d", b[0], c, c.Kind())
		}
		enc, err := fsm.Encode(c)
		if err != nil {
			t.Fatalf("Decode accepted %q as %#v, which Encode refuses: %v", b, c, err)
		}
		c2, err := fsm.Decode(enc)
		if err != nil {
			t.Fatalf("Decode refuses what Encode wrote for %#v: %v\nencoding: %q", c, err, enc)
		}
		if !sameValue(reflect.ValueOf(c), reflect.ValueOf(c2)) {
			t.Fatalf("round trip changed the command:\nbefore %#v\nafter  %#v", c, c2)
		}
		if enc2 := mustEncode(t, c2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\nfirst  %q\nsecond %q", enc, enc2)
		}
	})
}

// FuzzApply applies a sequence of entries, built from the input by a
// machineRun, to two FSMs: they must never panic and must always agree, as
// the replicas of a cluster drift apart otherwise. A third FSM restored
// from a snapshot taken partway (a follower catching up) must agree with
// them on everything after it.
func FuzzApply(f *testing.F) {
	for _, seed := range sampleRuns() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newMachineRun(t, data)
		for m.step() {
		}
		m.finish()
	})
}

// FuzzRestore feeds arbitrary bytes to Restore over a populated FSM: it must
// never panic, and a refused snapshot must leave the state as it was (Raft
// keeps running on it). A snapshot it accepts must be one the FSM can live
// with: its own snapshot of the result restores to the same state, and both
// take further commands alike and without panicking. Then the input drives
// a random history, whose snapshot must restore to the very same state.
func FuzzRestore(f *testing.F) {
	for _, seed := range sampleRuns() {
		m := newMachineRun(f, seed)
		for m.step() {
		}
		f.Add(persist(f, m.a))
	}
	f.Add([]byte(`{"v":1,"defaults":{"timeout":10000000000},"count":1}` + "\n" +
		`{"id":"web","status":"up","last_seen":5,"configured":true,"def":{"timeout":1000000000}}` + "\n"))
	// Every exec restores over the same populated state, built once here.
	base := newMachineRun(f, sampleRuns()[0])
	for base.step() {
	}
	populated := persist(f, base.a)
	f.Fuzz(func(t *testing.T, data []byte) {
		restoreArbitrary(t, populated, data)

		// FuzzApply checks histories step by step; here only the end.
		m := newMachineRun(t, data)
		m.quiet = true
		for m.step() {
		}
		restored := fsm.New()
		if err := restoreBytes(t, restored, persist(t, m.a)); err != nil {
			t.Fatalf("restoring a snapshot the FSM just wrote: %v", err)
		}
		assertSameState(t, "restored from its own snapshot", m.a, restored, m.now, false)
		touchAll(t, m.a, restored, m.now)
	})
}

func restoreArbitrary(t *testing.T, populated, data []byte) {
	target := fsm.New()
	if err := restoreBytes(t, target, populated); err != nil {
		t.Fatal(err)
	}
	before := observe(target, 0)
	beforeSnap := sortedSnapshot(persist(t, target))
	if err := restoreBytes(t, target, data); err != nil {
		if !reflect.DeepEqual(before, observe(target, 0)) || !bytes.Equal(beforeSnap, sortedSnapshot(persist(t, target))) {
			t.Fatalf("a refused snapshot (%v) changed the state", err)
		}
		return
	}
	// Accepted: the state must be one the FSM can live with.
	again := fsm.New()
	if err := restoreBytes(t, again, persist(t, target)); err != nil {
		t.Fatalf("Restore accepted a snapshot but refuses its own snapshot of the result: %v", err)
	}
	var now int64
	for _, s := range target.Services() {
		now = max(now, s.LastSeen)
	}
	assertSameState(t, "re-restored", target, again, now, false)
	touchAll(t, target, again, now)
}

// sortedSnapshot puts the service lines of a snapshot in order (Snapshot
// writes them in map order), so that two snapshots of one state compare
// equal. Unlike the readers, a snapshot shows the defaults and limits too.
func sortedSnapshot(b []byte) []byte {
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > 1 {
		slices.SortFunc(lines[1:], bytes.Compare)
	}
	return bytes.Join(lines, []byte("\n"))
}

func restoreBytes(t *testing.T, f *fsm.FSM, b []byte) error {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Restore panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return f.Restore(io.NopCloser(bytes.NewReader(b)))
}

// touchAll applies commands that reach every service of a and b (which
// must hold the same state) through every kind of command, at now and
// later. They must not panic and must leave a and b alike.
func touchAll(t *testing.T, a, b *fsm.FSM, now int64) {
	t.Helper()
	at := now + int64(time.Hour)
	svcs := a.Services()
	var ids []string
	var opens []fsm.Open
	defs := make(map[string]fsm.Definition)
	for i, s := range svcs {
		ids = append(ids, s.ID)
		opens = append(opens, fsm.Open{Service: s.ID, LastSeen: s.LastSeen})
		if i%2 == 0 && s.Def != nil {
			defs[s.ID] = *s.Def
		}
	}
	var cmds []fsm.Command
	for _, p := range a.PendingActions() {
		cmds = append(cmds,
			fsm.Attempt{At: at, Service: p.Service, Incident: p.Incident, Action: p.Run.Action, Event: p.Run.Event, Repeat: p.Run.Repeat, Attempt: 1, Error: "refused"},
			fsm.ActionResult{At: at, Service: p.Service, Incident: p.Incident, Action: p.Run.Action, Event: p.Run.Event, Repeat: p.Run.Repeat, State: fsm.ActionDone, Attempts: 2})
	}
	repeats, stable, _ := a.Due(time.Unix(0, at))
	cmds = append(cmds, fsm.Repeats{At: at, Items: repeats}, fsm.Stable{At: at, Items: stable}, fsm.Incidents{At: at, Opens: opens})
	for _, id := range ids {
		cmds = append(cmds, fsm.Pause{At: at, Service: id, Paused: true}, fsm.Pause{At: at, Service: id})
	}
	cmds = append(cmds,
		fsm.Heartbeat{At: at + 1, IDs: ids},
		fsm.Configure{At: at + 2, Defaults: fsm.Definition{Timeout: time.Second, Actions: []string{"log"}}, Services: defs},
		fsm.Incidents{At: at + 3, Opens: opens},
		fsm.Heartbeat{At: at + 4, IDs: ids},
	)
	for _, id := range ids {
		cmds = append(cmds, fsm.Define{At: at + 5, Service: id, Def: fsm.Definition{Timeout: time.Minute}}, fsm.Delete{At: at + 6, Service: id})
	}
	for i, c := range cmds {
		l := raft.Log{Index: uint64(1_000_000 + i), Term: 1, Type: raft.LogCommand, Data: mustEncode(t, c)}
		if ra, rb := applyOne(t, a, &l), applyOne(t, b, &l); !sameResponse(ra, rb) {
			t.Fatalf("%q: responses differ: %v and %v", l.Data, ra, rb)
		}
	}
	assertSameState(t, "after commands to every service", a, b, at+6, false)
}

// sampleCommands is one of every command kind, with every field set.
func sampleCommands() []fsm.Command {
	const at = 1767225600000000000
	def := fsm.Definition{Timeout: 3 * time.Second, Actions: []string{"page", "log"}, OnRecovered: []string{"log"},
		Grace: time.Second, Repeat: time.Minute, MaxRepeats: 3, FlapThreshold: 2, FlapWindow: time.Minute,
		Tags: []string{"db"}, Description: "the database"}
	return []fsm.Command{
		fsm.Heartbeat{At: at, IDs: []string{"web", "db", "worker-1"}},
		fsm.Heartbeat{At: -1},
		fsm.Configure{At: at, Defaults: def, Services: map[string]fsm.Definition{"worker-1": def}, HistoryPerService: 20},
		fsm.Incidents{At: at, Opens: []fsm.Open{{Service: "web", LastSeen: at - 1e10}}},
		fsm.ActionResult{At: at, Service: "web", Incident: "12-0", Action: "page", Event: fsm.EventRepeat, Repeat: 2,
			State: fsm.ActionFailed, Attempts: 4, Error: "exit status 1"},
		fsm.Pause{At: at, Service: "web", Paused: true},
		fsm.Repeats{At: at, Items: []fsm.RepeatDue{{Service: "web", Incident: "12-0", N: 2}}},
		fsm.Stable{At: at, Items: []fsm.StableDue{{Service: "web", Incident: "12-0", Changed: at - 1e11}}},
		fsm.Define{At: at, Service: "api-1", Def: def},
		fsm.Delete{At: at, Service: "api-1"},
		fsm.Attempt{At: at, Service: "web", Incident: "12-0", Action: "page", Event: fsm.EventDown, Attempt: 1, Error: "HTTP 503"},
		fsm.Ping{At: at, Service: "cron", Signal: fsm.SignalFail, ExitStatus: 3, RunID: "3f0d1c3e-8a7b-4c2d-9e1f-0a1b2c3d4e5f", Note: "disk full"},
	}
}

// sampleRuns are inputs for machineRun that reach incidents, results,
// recoveries, pauses, repeats, flapping, API definitions, raw entries and
// a snapshot.
func sampleRuns() [][]byte {
	raw := mustEncode(nil, fsm.Heartbeat{At: 1767225700000000000, IDs: []string{"raw"}})
	// Each step is its code, a time step (in 100 ms), then its own bytes:
	// see step. Services: web 0, db 1, cron 2, worker-1 3, worker-2 4,
	// batch.job 5, x 6. Actions: log 1, page 2, restart 4. A definition
	// is timeout-1 (s), actions, on_recovered, policy (bit 0 on; grace
	// bits 1-2; repeat bits 3-4, 5 s each; max_repeats bits 5-6), and
	// when on, flap threshold and flap window-10 (s).
	full := []byte{
		2, 0, 3, 3, 1, 0, 2, 3, 1, 4, 1, 0, 5, 0, 0, 0, 0, 0, // configure: defaults 4s, worker-1 and batch.job
		0, 10, 2, 0, 1, 2, 0, // heartbeat web db cron
		1, 5, 1, 3, 4, 0, // heartbeat worker-1 worker-2
		3, 80, 0xff, // incidents for everyone at their last heartbeat
		5, 1, 0, 0x20, // an attempt, then a result, for the first pending action
		5, 1, 1, 0x10, // a failure for the next one
		13, 0, // a snapshot, restored into a third FSM
		0, 20, 0, 0, 0, // web recovers
		7, 1, 1, 0, // pause db
		7, 1, 1, 1, // resume db
		7, 1, 2, 0, // pause cron
		4, 90, 0xfe, // incidents again for what is up
		5, 1, 2, 0, // another result
		9, 0, 6, 9, 2, 0, 0x09 | 1<<5, 0, // define api x: 10s, page, repeat 5s, at most 1
		0, 1, 0, 6, 0, // x beats
		3, 200, 0, // x is overdue: incident
		8, 100, 0, // its repeat is due
		8, 100, 0, // not yet again
		10, 0, 6, // delete x
		11, 0, byte(len(raw)), 0, // a raw heartbeat entry...
	}
	full = append(full, raw...)
	full = append(full, 11, 0, 4, 23, 'a', 'b', 'c', 'd') // ...and a configuration entry
	flapping := []byte{
		2, 0, 0, 1, 1, 1, 1, 0, 0, 0, // defaults 1s, log, flapping after 1 within 10s
		0, 1, 0, 0, 0, // web beats
		3, 20, 0xff, // down
		0, 1, 0, 0, 0, // up
		3, 20, 0xff, // down again: flapping
		0, 1, 0, 0, 0, // up, still flapping
		8, 200, 0, // stable
	}
	return [][]byte{
		full,
		flapping,
		{0, 1, 0, 0, 0, 3, 100, 0xff, 5, 0, 0, 0, 0, 2, 0, 0, 0}, // down, acted on, recovered
		{11, 0, 4, 0, 0x81, 1, '{', '}'},                         // an ignorable kind this build does not know
	}
}
