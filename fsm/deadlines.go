package fsm

import (
	"container/heap"
	"time"
)

// deadlines is an indexed min-heap of the services that are up, ordered by
// their natural deadline (LastSeen + Timeout). Each service knows its own
// position, so a heartbeat moves it in O(log n) and no stale entries pile
// up: the heap never holds more than one entry per service.
type deadlines []*Service

func (d deadlines) Len() int { return len(d) }
func (d deadlines) Less(i, j int) bool {
	return d[i].naturalDeadline() < d[j].naturalDeadline()
}
func (d deadlines) Swap(i, j int) {
	d[i], d[j] = d[j], d[i]
	d[i].heapIdx, d[j].heapIdx = i, j
}
func (d *deadlines) Push(x any) {
	s := x.(*Service)
	s.heapIdx = len(*d)
	*d = append(*d, s)
}
func (d *deadlines) Pop() any {
	old := *d
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*d = old[:len(old)-1]
	s.heapIdx = -1
	return s
}

// copy returns the record as readers see it, without its heap position.
func (s *Service) copy() Service {
	c := *s
	c.heapIdx, c.due = -1, 0
	return c
}

// naturalDeadline is computeDue as of the service's last move in the heap,
// kept so that ordering the heap does not evaluate cron schedules.
func (s *Service) naturalDeadline() int64 { return s.due }

// watch keeps s in the heap exactly while it is up, at its current deadline.
func (f *FSM) watch(s *Service) {
	if s.Status == StatusUp {
		s.due = s.computeDue()
	}
	switch {
	case s.Status != StatusUp && s.heapIdx >= 0:
		heap.Remove(&f.deadlines, s.heapIdx)
	case s.Status == StatusUp && s.heapIdx < 0:
		heap.Push(&f.deadlines, s)
	case s.Status == StatusUp:
		heap.Fix(&f.deadlines, s.heapIdx)
	}
}

// overdue walks only the part of the heap whose natural deadline has passed
// (a subtree whose root is still ahead holds nothing due), so a tick costs
// O(1) when nothing is due and O(k) for k services due. A service inside
// its failover grace is not due; its deadline still bounds the next wake-up.
// next may be early (a later look finds nothing due yet), never late.
func (f *FSM) overdue(now, watchingSince time.Time) (due []Open, next time.Time) {
	nowNS := now.UnixNano()
	var walk func(i int)
	walk = func(i int) {
		if i >= len(f.deadlines) {
			return
		}
		s := f.deadlines[i]
		if s.naturalDeadline() > nowNS {
			next = earliest(next, time.Unix(0, s.naturalDeadline()))
			return
		}
		if d := s.Deadline(watchingSince); d.After(now) {
			next = earliest(next, d)
		} else {
			due = append(due, Open{Service: s.ID, LastSeen: s.LastSeen})
		}
		walk(2*i + 1)
		walk(2*i + 2)
	}
	walk(0)
	return due, next
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}
