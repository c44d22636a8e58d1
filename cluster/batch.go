package cluster

import (
	"context"
)

// batcher is group commit: heartbeats that arrive while a flush is under way
// wait and go out together in the next one. A lone heartbeat on an idle node
// is flushed at once; under load batches grow by themselves, up to max ids.
// No timer ever waits for a batch to fill.
type batcher struct {
	reqs  chan *batchReq
	max   int
	flush func(ctx context.Context, ids []string) error
}

type batchReq struct {
	ids  []string
	done chan error // buffered: the batcher never blocks on a caller gone away
}

func newBatcher(max int, flush func(ctx context.Context, ids []string) error) *batcher {
	return &batcher{reqs: make(chan *batchReq, 1024), max: max, flush: flush}
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

func (b *batcher) run(ctx context.Context) {
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
		for _, r := range batch {
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
	for len(ids) < b.max {
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
			add(r)
		default:
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
