package fsm

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// bruteOverdue is the obvious scan the heap replaces.
func bruteOverdue(f *FSM, now, since time.Time) (due []Open, next time.Time) {
	for _, s := range f.Services() {
		if s.Status != StatusUp {
			continue
		}
		if d := s.Deadline(since); !d.After(now) {
			due = append(due, Open{Service: s.ID, LastSeen: s.LastSeen})
		} else {
			next = earliest(next, d)
		}
	}
	return due, next
}

func TestOverdueMatchesAFullScan(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for round := range 20 {
		a := randomHistory(t, r, 300)
		a.f.mu.RLock()
		for i, s := range a.f.deadlines {
			if s.heapIdx != i || s.Status != StatusUp {
				t.Fatalf("round %d: heap entry %d = %q (idx %d, %s)", round, i, s.ID, s.heapIdx, s.Status)
			}
		}
		ups := 0
		for _, s := range a.f.services {
			if s.Status == StatusUp {
				ups++
			}
		}
		if ups != len(a.f.deadlines) {
			t.Fatalf("round %d: %d services up, %d in the heap", round, ups, len(a.f.deadlines))
		}
		a.f.mu.RUnlock()
		for range 10 {
			now := time.Unix(0, int64(r.IntN(400))*int64(time.Second/2))
			since := now.Add(-time.Duration(r.IntN(5)) * time.Second)
			due, next := a.f.Overdue(now, since)
			wantDue, wantNext := bruteOverdue(a.f, now, since)
			if !slices.Equal(due, wantDue) && !(len(due) == 0 && len(wantDue) == 0) {
				t.Fatalf("round %d: due = %v, want %v", round, due, wantDue)
			}
			// next may be early (a wake-up that finds nothing), never late.
			if next.IsZero() != wantNext.IsZero() || next.After(wantNext) || (!next.IsZero() && !next.After(now)) {
				t.Fatalf("round %d: next = %v, want in (%v, %v]", round, next, now, wantNext)
			}
		}
	}
}

func TestNoServiceIsDueBeforeItsDeadline(t *testing.T) {
	a := newApplier(t)
	a.apply(Configure{Defaults: Definition{Timeout: 10 * time.Second}})
	base := time.Unix(5000, 0)
	for i := range 1000 {
		a.apply(Heartbeat{At: base.Add(time.Duration(i) * time.Millisecond).UnixNano(), IDs: []string{string(rune('a'+i%26)) + "-" + time.Duration(i).String()}})
	}
	var order []string
	for ms := 9000; ms <= 12000; ms += 7 {
		now := base.Add(time.Duration(ms) * time.Millisecond)
		due, _ := a.f.Overdue(now, time.Time{})
		for _, o := range due {
			if dl := time.Unix(0, o.LastSeen).Add(10 * time.Second); dl.After(now) {
				t.Fatalf("%s due at %v before its deadline %v", o.Service, now, dl)
			}
			a.apply(Incidents{At: now.UnixNano(), Opens: []Open{o}})
			order = append(order, o.Service)
		}
	}
	if len(order) != 1000 {
		t.Fatalf("%d services expired, want 1000", len(order))
	}
}

func TestMassExpiryAndRecovery(t *testing.T) {
	a := newApplier(t)
	a.apply(Configure{Defaults: Definition{Timeout: time.Second, Actions: []string{"log"}}})
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = "svc-" + time.Duration(i).String()
	}
	a.apply(Heartbeat{At: 1, IDs: ids})
	due, _ := a.f.Overdue(time.Unix(0, 1).Add(time.Second), time.Time{})
	if len(due) != len(ids) {
		t.Fatalf("%d due, want %d", len(due), len(ids))
	}
	opened := a.apply(Incidents{At: int64(2 * time.Second), Opens: due}).(Opened)
	if slices.Contains(opened, "") {
		t.Fatal("some incidents did not open")
	}
	if n := len(a.f.PendingActions()); n != len(ids) {
		t.Fatalf("%d pending actions, want %d", n, len(ids))
	}
	a.apply(Heartbeat{At: int64(3 * time.Second), IDs: ids})
	due, next := a.f.Overdue(time.Unix(0, int64(3*time.Second)), time.Time{})
	if len(due) != 0 || !next.Equal(time.Unix(0, int64(4*time.Second))) {
		t.Fatalf("after recovery due=%d next=%v", len(due), next)
	}
	if !reflect.DeepEqual(a.service(ids[0]).Status, StatusUp) {
		t.Fatal("not up after recovery")
	}
}
