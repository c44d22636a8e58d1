package cluster

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
)

func applyHeartbeat(t *testing.T, f *fsm.FSM, index uint64, ids ...string) {
	t.Helper()
	b, err := fsm.Encode(fsm.Heartbeat{At: int64(index), IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: b})
}

// Entries proposed but not yet applied count towards max_services: two
// batches in flight at once cannot each take the last place.
func TestAdmissionCountsProposalsUnderWay(t *testing.T) {
	f := fsm.New()
	applyHeartbeat(t, f, 1, "old")
	a := newAdmission(3, true, []string{"cfg"}, f)

	ok1, refused1, release1 := a.admit([]string{"old", "new-1", "cfg"}, false)
	if len(ok1) != 3 || len(refused1) != 0 {
		t.Fatalf("first batch: admitted %v, refused %v", ok1, refused1)
	}
	// new-1 is not applied yet, but holds its place: one left.
	ok2, refused2, release2 := a.admit([]string{"new-2", "new-3", "new-1", "old"}, false)
	if len(ok2) != 3 || !errors.Is(refused2["new-3"], ErrTooManyServices) {
		t.Fatalf("second batch: admitted %v, refused %v", ok2, refused2)
	}
	applyHeartbeat(t, f, 2, ok1...)
	release1()
	applyHeartbeat(t, f, 3, ok2...)
	release2()
	if f.Len() != 4 { // old, cfg, new-1, new-2: configured services are always let in
		t.Fatalf("%d services, want 4", f.Len())
	}
	// A proposal that failed gives its place back.
	a = newAdmission(5, true, nil, f)
	_, _, release := a.admit([]string{"x"}, false)
	if _, refused, _ := a.admit([]string{"y"}, false); len(refused) == 0 {
		t.Fatal("y admitted while x holds the last place")
	}
	release()
	if _, refused, _ := a.admit([]string{"y"}, false); len(refused) != 0 {
		t.Fatalf("y refused after x's proposal failed: %v", refused)
	}
}

// With auto_register off only known, configured or explicitly defined ids
// pass; the refusal is fsm.ErrUnknownService, which the API maps to 404.
func TestAdmissionWithoutAutoRegister(t *testing.T) {
	f := fsm.New()
	applyHeartbeat(t, f, 1, "old")
	a := newAdmission(0, false, []string{"cfg"}, f)
	ok, refused, release := a.admit([]string{"old", "cfg", "stranger"}, false)
	release()
	if len(ok) != 2 || !errors.Is(refused["stranger"], fsm.ErrUnknownService) {
		t.Fatalf("admitted %v, refused %v", ok, refused)
	}
	if _, refused, _ := a.admit([]string{"defined"}, true); len(refused) != 0 {
		t.Fatalf("an explicit definition was refused: %v", refused)
	}
	r := &RefusedError{IDs: refused}
	if r.For([]string{"old"}) != nil || !errors.Is(r.For([]string{"old", "stranger"}), fsm.ErrUnknownService) {
		t.Fatal("RefusedError.For does not tell the requests apart")
	}
	back := refusedFrom((&RefusedError{IDs: map[string]error{"a": refused["stranger"]}}).Reasons())
	if !errors.Is(back.IDs["a"], fsm.ErrUnknownService) || back.IDs["a"].Error() != refused["stranger"].Error() {
		t.Fatalf("a refusal lost its reason or words on the wire: %v", back.IDs["a"])
	}
}
