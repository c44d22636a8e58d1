//go:build !watchdog_nextproto

package fsm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// buildTags are the tags of this build, for tests that read the source.
const buildTags = ""

// noteEntry is a log entry as the watchdog_nextproto build writes a Note
// (protocol_next.go), spelled out here because this build cannot encode it.
func noteEntry(kind Kind) []byte {
	return append([]byte{byte(kind), commandVersion}, `{"at":5,"service":"a","text":"hello"}`...)
}

// An old build handed the next protocol's Note stops instead of diverging;
// the same entry marked Ignorable is skipped and changes nothing.
func TestOldBuildStopsOnANewKindAndSkipsAnIgnorableOne(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 1, IDs: []string{"a"}})
	before := canonical(t, a.f)

	if got := a.f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: noteEntry(Ignorable | 12)}); got != nil {
		t.Fatalf("ignorable new kind returned %v", got)
	}
	if after := canonical(t, a.f); !bytes.Equal(before, after) {
		t.Fatalf("skipping an ignorable kind changed the state:\n%s\n%s", before, after)
	}

	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("Apply of an unknown non-ignorable kind did not stop")
		}
		if msg, _ := r.(string); !strings.Contains(msg, "entry 3") || !strings.Contains(msg, "unknown command kind") {
			t.Fatalf("stopped with %v, want the entry and the unknown kind named", r)
		}
	}()
	a.f.Apply(&raft.Log{Index: 3, Type: raft.LogCommand, Data: noteEntry(12)})
}

// Every kind of the first release, listed (not counted: kind 10 is
// written with the Ignorable bit, and a loop that jumped to it skipped 11).
var baseKinds = []Kind{KindHeartbeat, KindConfigure, KindIncidents, KindActionResult, KindPause,
	KindRepeats, KindStable, KindDefine, KindDelete, KindAttempt, KindPing}

func TestMinProtocol(t *testing.T) {
	for _, k := range baseKinds {
		if got := MinProtocol(k); got != BaseProtocol {
			t.Errorf("MinProtocol(%d) = %d, want the base protocol %d", k, got, BaseProtocol)
		}
	}
	// Unknown to this build: never proposed, whoever advertises what.
	if got := MinProtocol(12); got <= ProtocolVersion {
		t.Errorf("MinProtocol of an unknown kind = %d, want above %d", got, ProtocolVersion)
	}
}
