package cluster

import (
	"context"
	"testing"
	"time"
)

// barrierAsync starts a barrier and returns where its outcome will come.
func barrierAsync(b *batcher) chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- b.barrier(ctx)
	}()
	return done
}

// stillWaiting fails the test if the barrier returned: it must not while
// something before it is unanswered. (A negative check must wait a little;
// it cannot pass by mistake, only miss a barrier that returns late.)
func stillWaiting(t *testing.T, settled chan error, what string) {
	t.Helper()
	select {
	case err := <-settled:
		t.Fatalf("the barrier returned (%v) while %s", err, what)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestABarrierWaitsForEveryHeartbeatBeforeIt(t *testing.T) {
	g := newGate()
	b := startBatcher(t, 100, g)
	first := submitAsync(b, "a")
	<-g.entered // in flight
	second := submitAsync(b, "b")
	settled := barrierAsync(b)
	stillWaiting(t, settled, "a batch was in flight")
	g.release <- nil
	<-g.entered // the next batch: b, and the barrier with it
	stillWaiting(t, settled, "the batch holding b was in flight")
	g.release <- nil
	if err := <-settled; err != nil {
		t.Fatal(err)
	}
	for _, res := range []chan error{first, second} {
		select {
		case err := <-res:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("the barrier returned before a heartbeat submitted ahead of it was answered")
		}
	}
}

func TestABarrierWaitsForEveryBatchInFlight(t *testing.T) {
	g := newGate()
	b := startPolicyBatcher(t, batchPolicy{max: 100, fill: 1, inflight: 2}, g.flush, nil)
	first := submitAsync(b, "a")
	<-g.entered
	second := submitAsync(b, "b")
	<-g.entered // two batches in flight at once
	settled := barrierAsync(b)
	// The barrier's own batch, empty, is flushed at once (nothing to
	// commit); the first batch is still in flight.
	g.release <- nil // one of the two ends
	stillWaiting(t, settled, "a batch was still in flight")
	g.release <- nil
	if err := <-settled; err != nil {
		t.Fatal(err)
	}
	for _, res := range []chan error{first, second} {
		if err := <-res; err != nil {
			t.Fatal(err)
		}
	}
	if !b.startAlone() {
		t.Fatal("after the barrier a slot is missing: it must give back every slot it took")
	}
	b.free <- struct{}{}
}

func TestABarrierOnAnIdleBatcherTakesNoTokenAndFlushesNothing(t *testing.T) {
	g := newGate()
	clock := &stoppedClock{t: time.Now()}
	b := startPolicyBatcher(t, batchPolicy{max: 100, fill: 100, spacing: time.Hour, burst: 1}, g.flush, clock.now)
	if err := <-barrierAsync(b); err != nil {
		t.Fatal(err)
	}
	if enteredWithin(g, 0) {
		t.Fatal("a barrier flushed a batch of its own")
	}
	// The one token is still there: a lone heartbeat goes at once.
	res := submitAsync(b, "a")
	if !enteredWithin(g, 10*time.Second) {
		t.Fatal("the heartbeat after a barrier waited for the spacing: the barrier spent its token")
	}
	g.release <- nil
	if err := <-res; err != nil {
		t.Fatal(err)
	}
}
