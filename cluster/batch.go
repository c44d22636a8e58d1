package cluster

import (
	"context"
	"errors"
	"sync"
	"time"
)

// batcher is group commit: heartbeats that arrive while the flushes under way
// are in flight wait and go out together in the next one. A lone heartbeat on
// an idle node is flushed at once; under load batches grow by themselves, up
// to max ids. A batch closes when a flush slot is free, or, with a window,
// up to window later if others were already queued behind its first
// heartbeat: the window trades latency under load for fewer, larger
// entries, and never delays a heartbeat that arrives alone.
//
// Up to inflight flushes run at once, so a commit's round trip (an fsync on
// a quorum) does not idle the node: Raft writes entries that arrive together
// in one disk write, so pipelined entries share fsyncs too.
type batcher struct {
	reqs     chan *batchReq
	max      int
	inflight int
	window   time.Duration
	flush    func(ctx context.Context, ids []string) error
}

type batchReq struct {
	ids  []string
	done chan error // buffered: the batcher never blocks on a caller gone away
}

func newBatcher(maxIDs, inflight int, window time.Duration, flush func(ctx context.Context, ids []string) error) *batcher {
	return &batcher{reqs: make(chan *batchReq, 1024), max: maxIDs, inflight: max(inflight, 1), window: window, flush: flush}
}

// submit hands ids to the next flush and waits for its outcome.
func (b *batcher) submit(ctx context.Context, ids []string) error {
	r := &batchReq{ids: ids, done: make(chan error, 1)}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		// The heartbeat may still commit; the caller retries, which is
		// harmless because heartbeats are idempotent.
		return ctx.Err()
	}
}

// run flushes batches until ctx ends, with up to b.inflight flushes at once.
func (b *batcher) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range b.inflight {
		wg.Go(func() { b.flushLoop(ctx) })
	}
	wg.Wait()
}

func (b *batcher) flushLoop(ctx context.Context) {
	for {
		var first *batchReq
		select {
		case first = <-b.reqs:
		case <-ctx.Done():
			b.failQueued(ctx.Err())
			return
		}
		batch, ids := b.collect(first)
		err := b.flush(ctx, ids)
		var refused *RefusedError
		isRefused := errors.As(err, &refused)
		for _, r := range batch {
			if isRefused {
				// Only the requests that carried a refused id fail.
				r.done <- refused.For(r.ids)
				continue
			}
			r.done <- err
		}
	}
}

// collect takes first and whatever else is already queued, up to max ids,
// merging repeated ids: one heartbeat per service per entry is enough.
func (b *batcher) collect(first *batchReq) ([]*batchReq, []string) {
	batch := []*batchReq{first}
	if len(b.reqs) == 0 {
		return batch, first.ids
	}
	seen := make(map[string]struct{}, len(first.ids))
	ids := make([]string, 0, len(first.ids))
	add := func(r *batchReq) {
		for _, id := range r.ids {
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				ids = append(ids, id)
			}
		}
	}
	add(first)
	var closing <-chan time.Time // nil without a window: close when the queue is empty
	if b.window > 0 {
		t := time.NewTimer(b.window)
		defer t.Stop()
		closing = t.C
	}
	for len(ids) < b.max {
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
			add(r)
			continue
		default:
		}
		if closing == nil {
			break
		}
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
			add(r)
		case <-closing:
			return batch, ids
		}
	}
	return batch, ids
}

func (b *batcher) failQueued(err error) {
	for {
		select {
		case r := <-b.reqs:
			r.done <- err
		default:
			return
		}
	}
}
