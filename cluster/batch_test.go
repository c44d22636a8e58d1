package cluster

import (
	"context"
	"errors"
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
	return startWindowBatcher(t, max, 0, g)
}

func startWindowBatcher(t *testing.T, max int, window time.Duration, g *gate) *batcher {
	b := newBatcher(max, 1, window, g.flush)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return b
}

func submitAsync(b *batcher, ids ...string) chan error {
	ch := make(chan error, 1)
	go func() { ch <- b.submit(context.Background(), ids) }()
	return ch
}

// waitQueued polls until n requests wait in the batcher's queue.
func waitQueued(t *testing.T, b *batcher, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(b.reqs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", len(b.reqs), n)
		}
		time.Sleep(time.Millisecond)
	}
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
	waitQueued(t, b, 3)
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
	waitQueued(t, b, 2)
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
	waitQueued(t, b, 5)
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

func TestAWindowNeverDelaysALoneHeartbeat(t *testing.T) {
	g := newGate()
	b := startWindowBatcher(t, 100, time.Hour, g)
	res := submitAsync(b, "a")
	if !enteredWithin(g, 10*time.Second) {
		t.Fatal("a lone heartbeat waited for the window")
	}
	g.release <- nil
	if err := <-res; err != nil {
		t.Fatal(err)
	}
}

func TestAWindowHoldsABusyBatchOpenUntilItFills(t *testing.T) {
	g := newGate()
	b := startWindowBatcher(t, 3, time.Hour, g)
	first := submitAsync(b, "x")
	<-g.entered
	waiting := []chan error{submitAsync(b, "a"), submitAsync(b, "b")}
	waitQueued(t, b, 2)
	g.release <- nil
	if enteredWithin(g, 200*time.Millisecond) {
		t.Fatalf("batch %q flushed while its window was open and it had room", g.batch(1))
	}
	waiting = append(waiting, submitAsync(b, "c"))
	<-g.entered // the count bound closes the window
	g.release <- nil
	for _, ch := range append(waiting, first) {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if got := slices.Sorted(slices.Values(g.batch(1))); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("second batch = %q, want a b c", got)
	}
}

func TestAWindowClosesABatchInTime(t *testing.T) {
	g := newGate()
	b := startWindowBatcher(t, 100, 20*time.Millisecond, g)
	first := submitAsync(b, "x")
	<-g.entered
	waiting := []chan error{submitAsync(b, "a"), submitAsync(b, "b")}
	waitQueued(t, b, 2)
	g.release <- nil
	if !enteredWithin(g, 10*time.Second) {
		t.Fatal("the window never closed the batch")
	}
	g.release <- nil
	for _, ch := range append(waiting, first) {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
}
