package cluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
)

// sealBackup makes a whole backup file of snapshot bytes: the header that
// fits them and the checksum over both, as WriteBackup writes them.
func sealBackup(snapshot []byte) []byte {
	header := fmt.Sprintf(`{"magic":%q,"version":%d,"index":7,"term":2,"size":%d,"node":"n1","created":"2026-12-05T00:00:00Z"}`,
		backupMagic, backupVersion, len(snapshot))
	out := append([]byte(header+"\n"), snapshot...)
	sum := sha256.Sum256(out)
	return append(out, fmt.Sprintf("{\"sha256\":%q}\n", hex.EncodeToString(sum[:]))...)
}

// snapshotOf is the FSM snapshot of a state with a few services.
func snapshotOf(t testing.TB) []byte {
	f := fsm.New()
	for i, c := range []fsm.Command{
		fsm.Configure{Defaults: fsm.Definition{Timeout: time.Second}},
		fsm.Heartbeat{At: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC).UnixNano(), IDs: []string{"a", "b", "web-1"}},
	} {
		data, err := fsm.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		f.Apply(&raft.Log{Index: uint64(i + 1), Data: data})
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var sink memorySink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

type memorySink struct{ bytes.Buffer }

func (*memorySink) ID() string    { return "fuzz" }
func (*memorySink) Cancel() error { return nil }
func (*memorySink) Close() error  { return nil }

// FuzzInspectBackup feeds the check of PUT /v1/snapshot's body files that
// are arbitrary bytes (sealed false), and arbitrary snapshots sealed with a
// header and checksum that fit them, as a hand-made file could be (sealed
// true): it must never panic, refuse with ErrBadBackup alone, and accept
// only a file whose snapshot restores.
func FuzzInspectBackup(f *testing.F) {
	good := snapshotOf(f)
	f.Add(good, true)
	f.Add(sealBackup(good), false)
	f.Add(good[:len(good)/2], true)
	f.Add([]byte(`{"magic":"watchdog-backup","version":1,"size":3}`+"\nabc\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, sealed bool) {
		file := data
		if sealed {
			file = sealBackup(data)
		}
		info, err := InspectBackup(bytes.NewReader(file), nil)
		if err != nil {
			if !errors.Is(err, ErrBadBackup) {
				t.Fatalf("refused without ErrBadBackup: %v", err)
			}
			return
		}
		if !sealed {
			return // a file that checks: its own sealed snapshot was fuzzed as well
		}
		if info.Size != int64(len(data)) {
			t.Fatalf("accepted with size %d, the snapshot has %d bytes", info.Size, len(data))
		}
		if err := fsm.New().Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			t.Fatalf("accepted a backup whose snapshot does not restore: %v", err)
		}
	})
}
