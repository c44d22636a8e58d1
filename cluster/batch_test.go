package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// gate is a flush function that records each batch and holds it until
// released, so a test controls exactly what is in flight.
type gate struct {
	mu      sync.Mutex
	batches [][]string
	entered chan struct{}
	release chan error
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 16), release: make(chan error)}
}

func (g *gate) flush(ctx context.Context, ids []string) error {
	g.mu.Lock()
	g.batches = append(g.batches, slices.Clone(ids))
	g.mu.Unlock()
	g.entered <- struct{}{}
	select {
	case err := <-g.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) batch(i int) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.batches[i]
}

func startBatcher(t *testing.T, max int, g *gate) *batcher {
	return startPolicyBatcher(t, batchPolicy{max: max, fill: max}, g.flush, nil)
}

// startPolicyBatcher runs a batcher; now, if set, is its clock.
func startPolicyBatcher(t *testing.T, p batchPolicy, flush flushFunc, now func() time.Time) *batcher {
	b := newBatcher(p, flush)
	if now != nil {
		b.now = now
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return b
}

// submitAsync queues a request (in order: it is in the batcher when this
// returns) and returns where its outcome will come.
func submitAsync(b *batcher, ids ...string) chan error {
	r := &batchReq{ids: ids, done: make(chan error, 1)}
	b.reqs <- r
	return r.done
}

func TestLoneHeartbeatIsFlushedAtOnce(t *testing.T) {
	g := newGate()
	b := startBatcher(t, 100, g)
	res := submitAsync(b, "a")
	<-g.entered // flushed without any other request arriving
	g.release <- nil
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if got := g.batch(0); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("batch = %q", got)
	}
}

func TestHeartbeatsArrivingDuringAFlushShareTheNextAndMerge(t *testing.T) {
	g := newGate()
	b := startBatcher(t, 100, g)
	first := submitAsync(b, "a")
	<-g.entered
	var waiting []chan error
	for _, ids := range [][]string{{"b", "c"}, {"c"}, {"a", "d"}} {
		waiting = append(waiting, submitAsync(b, ids...))
	}
	g.release <- nil
	<-g.entered
	g.release <- nil
	for _, ch := range append(waiting, first) {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	got := slices.Sorted(slices.Values(g.batch(1)))
	if !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("second batch = %q, want a b c d once each", got)
	}
}

func TestAFailedFlushFailsEveryRequestInIt(t *testing.T) {
	g := newGate()
	b := startBatcher(t, 100, g)
	first := submitAsync(b, "a")
	<-g.entered
	second, third := submitAsync(b, "b"), submitAsync(b, "c")
	g.release <- nil
	<-g.entered
	boom := errors.New("entry lost")
	g.release <- boom
	if err := <-first; err != nil {
		t.Fatalf("first request: %v, want its own success", err)
	}
	for _, ch := range []chan error{second, third} {
		if err := <-ch; !errors.Is(err, boom) {
			t.Fatalf("request in the failed entry got %v", err)
		}
	}
}

func TestBatchesAreBoundedByCount(t *testing.T) {
	g := newGate()
	b := startBatcher(t, 3, g)
	first := submitAsync(b, "x")
	<-g.entered
	var rest []chan error
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		rest = append(rest, submitAsync(b, id))
	}
	for range 2 { // x, then a b c, then d e
		g.release <- nil
		<-g.entered
	}
	g.release <- nil
	for _, ch := range append(rest, first) {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(g.batch(1)); n != 3 {
		t.Fatalf("second batch has %d ids, want the bound of 3", n)
	}
	if n := len(g.batch(2)); n != 2 {
		t.Fatalf("third batch has %d ids, want the 2 left", n)
	}
}

// enteredWithin reports whether a flush started within d.
func enteredWithin(g *gate, d time.Duration) bool {
	select {
	case <-g.entered:
		return true
	case <-time.After(d):
		return false
	}
}

// stoppedClock is a clock that moves only when told.
type stoppedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stoppedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stoppedClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestALoneHeartbeatIsNeverDelayed(t *testing.T) {
	g := newGate()
	clock := &stoppedClock{t: time.Now()}
	b := startPolicyBatcher(t, batchPolicy{max: 100, fill: 100, spacing: time.Hour}, g.flush, clock.now)
	for i := range 3 {
		res := submitAsync(b, "a")
		if !enteredWithin(g, 10*time.Second) {
			t.Fatalf("heartbeat %d on an idle node waited for the spacing", i)
		}
		g.release <- nil
		if err := <-res; err != nil {
			t.Fatal(err)
		}
		clock.advance(time.Hour) // nothing else for a whole spacing: idle again
	}
}

func TestUnderLoadAHeartbeatJoinsTheNextEntry(t *testing.T) {
	g := newGate()
	clock := &stoppedClock{t: time.Now()}
	b := startPolicyBatcher(t, batchPolicy{max: 100, fill: 3, spacing: time.Hour}, g.flush, clock.now)
	first := submitAsync(b, "x")
	<-g.entered
	g.release <- nil
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The entry before started less than a spacing ago: the next waits
	// for its time, or until it holds fill ids.
	waiting := []chan error{submitAsync(b, "a"), submitAsync(b, "b")}
	if enteredWithin(g, 200*time.Millisecond) {
		t.Fatalf("batch %q started before its time with fewer than fill ids", g.batch(1))
	}
	waiting = append(waiting, submitAsync(b, "c"))
	<-g.entered // full enough to pay for its entry: it starts now
	g.release <- nil
	for _, ch := range waiting {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if got := slices.Sorted(slices.Values(g.batch(1))); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("second batch = %q, want a b c", got)
	}
}

func TestTheNextEntryStartsWhenItsTimeComes(t *testing.T) {
	g := newGate()
	b := startPolicyBatcher(t, batchPolicy{max: 100, fill: 100, spacing: 20 * time.Millisecond}, g.flush, nil)
	first := submitAsync(b, "x")
	<-g.entered
	g.release <- nil
	waiting := []chan error{submitAsync(b, "a"), submitAsync(b, "b")}
	if !enteredWithin(g, 10*time.Second) {
		t.Fatal("the next entry never started")
	}
	g.release <- nil
	for _, ch := range append(waiting, first) {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
}

// TestEntriesPerSecondAreBoundedUnderLoad sends heartbeats from many
// clients as fast as they are answered: the batcher starts entries no
// closer together than the spacing (a bucket of one token), so there are at
// most duration/spacing + 1 of them. (The workers start them a moment
// later, by a varying hand-off, so the bound is on the count.)
func TestEntriesPerSecondAreBoundedUnderLoad(t *testing.T) {
	const spacing = 20 * time.Millisecond
	var mu sync.Mutex
	var starts []time.Time
	heartbeats := 0
	flush := func(_ context.Context, ids []string) error {
		mu.Lock()
		starts = append(starts, time.Now())
		heartbeats += len(ids)
		mu.Unlock()
		return nil
	}
	b := startPolicyBatcher(t, batchPolicy{max: 4096, fill: 4096, spacing: spacing, inflight: 4}, flush, nil)
	begin := time.Now()
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Go(func() {
			for i := 0; time.Since(begin) < 300*time.Millisecond; i++ {
				if err := b.submit(context.Background(), []string{fmt.Sprintf("c%d-%d", c, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	mu.Lock()
	defer mu.Unlock()
	if most := int(elapsed/spacing) + 1; len(starts) > most {
		t.Fatalf("%d entries in %s, want at most %d", len(starts), elapsed, most)
	}
	if heartbeats <= len(starts) {
		t.Fatalf("%d heartbeats in %d entries: nothing was grouped", heartbeats, len(starts))
	}
	t.Logf("%d heartbeats in %d entries over %s", heartbeats, len(starts), elapsed)
}

// A steady trickle of heartbeats about one spacing apart, some a little
// early, is never held back: the bucket keeps a token in reserve for them.
func TestASteadyTrickleAtTheSpacingIsNeverDelayed(t *testing.T) {
	g := newGate()
	clock := &stoppedClock{t: time.Now()}
	b := startPolicyBatcher(t, batchPolicy{max: 100, fill: 100, spacing: time.Hour, burst: 2}, g.flush, clock.now)
	for i := range 10 {
		res := submitAsync(b, "a")
		if !enteredWithin(g, 10*time.Second) {
			t.Fatalf("heartbeat %d of a trickle at the spacing waited", i)
		}
		g.release <- nil
		if err := <-res; err != nil {
			t.Fatal(err)
		}
		clock.advance(time.Hour - time.Minute) // a minute early
	}
}

// A heartbeat that finds the batcher idle is flushed by its caller: here
// the scheduler never runs, so only the caller can have flushed it. The
// next one, before its token, is not: it waits for the scheduler.
func TestALoneHeartbeatIsFlushedByItsCaller(t *testing.T) {
	clock := &stoppedClock{t: time.Now()}
	var flushed [][]string
	b := newBatcher(batchPolicy{max: 100, fill: 100, spacing: time.Hour}, func(_ context.Context, ids []string) error {
		flushed = append(flushed, slices.Clone(ids))
		return nil
	})
	b.now = clock.now
	first, cancelFirst := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelFirst()
	if err := b.submit(first, []string{"a"}); err != nil {
		t.Fatalf("a heartbeat on an idle batcher: %v", err)
	}
	if len(flushed) != 1 || !slices.Equal(flushed[0], []string{"a"}) {
		t.Fatalf("flushed %q, want [a] by the caller", flushed)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := b.submit(ctx, []string{"b"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second heartbeat within the spacing: %v, want it left to the scheduler", err)
	}
	if len(flushed) != 1 {
		t.Fatalf("flushed %q: the second heartbeat did not wait for its token", flushed)
	}
}

// A caller flushing alone answers for its own ids only when some are
// refused, as a batch does.
func TestARefusedIDFailsOnlyItsCallerWhenAlone(t *testing.T) {
	b := newBatcher(batchPolicy{max: 100, fill: 100}, func(_ context.Context, ids []string) error {
		return &RefusedError{IDs: map[string]error{"bad": errors.New("unknown service")}}
	})
	err := b.submit(context.Background(), []string{"bad", "good"})
	refused, ok := errors.AsType[*RefusedError](err)
	if !ok || len(refused.IDs) != 1 || refused.IDs["bad"] == nil {
		t.Fatalf("err = %v, want bad refused alone", err)
	}
}
