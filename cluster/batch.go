package cluster

import (
	"context"
	"errors"
	"sync"
	"time"
)

// batcher is group commit with a bound on the rate of batches. A Raft entry
// costs the same CPU whether it carries one heartbeat or a thousand (a
// quorum of fsyncs, the pipeline writes, an apply on every node), so what
// a node pays for follows the number of entries, not of heartbeats.
//
// The rule: a batch starts at once if none started within the last spacing
// (an idle node: a lone heartbeat is never delayed), or as soon as it holds
// fill ids (enough to pay for its entry; heavy load is never held back);
// otherwise it starts spacing after the one before, with everything that
// arrived meanwhile. So under load there are at most 1/spacing batches a
// second that are not full, and each heartbeat waits at most spacing.
//
// Up to inflight batches run at once, on as many long-lived workers: a
// commit's round trip (an fsync on a quorum) or a forward's does not hold
// the next batch, and neither needs a goroutine or a timer of its own.
type batcher struct {
	reqs     chan *batchReq
	max      int           // ids in one batch, at most
	fill     int           // ids that start a batch before spacing is up
	spacing  time.Duration // least time between the starts of two batches
	inflight int
	flush    flushFunc
	now      func() time.Time // the clock spacing is read on (tests stop it)
	// pool recycles requests and their channels: two allocations less per
	// heartbeat. A request goes back only once its answer has been taken,
	// so no late answer can reach its next user.
	pool sync.Pool
}

type batchReq struct {
	ids  []string
	done chan error // buffered: the batcher never blocks on a caller gone away
}

// batchPolicy is how a batcher shapes its batches (see batcher).
type batchPolicy struct {
	max, fill, inflight int
	spacing             time.Duration
}

func newBatcher(p batchPolicy, flush flushFunc) *batcher {
	b := &batcher{reqs: make(chan *batchReq, 1024), max: max(p.max, 1), fill: max(min(p.fill, p.max), 1),
		spacing: p.spacing, inflight: max(p.inflight, 1), flush: flush, now: time.Now}
	b.pool.New = func() any { return &batchReq{done: make(chan error, 1)} }
	return b
}

// submit hands ids to the next batch and waits for its outcome.
func (b *batcher) submit(ctx context.Context, ids []string) error {
	r := b.pool.Get().(*batchReq)
	r.ids = ids
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		r.ids = nil
		b.pool.Put(r)
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		r.ids = nil
		b.pool.Put(r)
		return err
	case <-ctx.Done():
		// The heartbeat may still commit; the caller retries, which is
		// harmless because heartbeats are idempotent.
		return ctx.Err()
	}
}

// run forms and flushes batches until ctx ends.
func (b *batcher) run(ctx context.Context) {
	free := make(chan struct{}, b.inflight)
	work := make(chan []*batchReq, b.inflight)
	var wg sync.WaitGroup
	for range b.inflight {
		free <- struct{}{}
		wg.Go(func() {
			for batch := range work {
				b.flushBatch(ctx, batch)
				free <- struct{}{}
			}
		})
	}
	b.schedule(ctx, free, work)
	close(work)
	wg.Wait()
	b.failQueued(ctx.Err())
}

// schedule decides when each batch starts and what it holds, and hands it
// to a free worker.
func (b *batcher) schedule(ctx context.Context, free <-chan struct{}, work chan<- []*batchReq) {
	var q reqQueue
	var last time.Time // when the last batch started
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if q.len() == 0 {
			select {
			case r := <-b.reqs:
				q.push(r)
			case <-ctx.Done():
				return
			}
		}
		if wait := last.Add(b.spacing).Sub(b.now()); wait > 0 && q.ids < b.fill {
			timer.Reset(wait)
			ok := b.gather(ctx, &q, timer.C)
			timer.Stop()
			if !ok {
				q.fail(ctx.Err())
				return
			}
		}
		select {
		case <-free:
		case <-ctx.Done():
			q.fail(ctx.Err())
			return
		}
		b.drain(&q)
		last = b.now()
		work <- q.take(b.max)
	}
}

// gather queues what arrives until the batch holds fill ids or due fires;
// false if ctx ended first.
func (b *batcher) gather(ctx context.Context, q *reqQueue, due <-chan time.Time) bool {
	for q.ids < b.fill {
		select {
		case r := <-b.reqs:
			q.push(r)
		case <-due:
			return true
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// drain queues whatever already waits, up to a full batch.
func (b *batcher) drain(q *reqQueue) {
	for q.ids < b.max {
		select {
		case r := <-b.reqs:
			q.push(r)
		default:
			return
		}
	}
}

// flushBatch flushes the ids of batch, merged (one heartbeat per service per
// entry is enough), and answers each request.
func (b *batcher) flushBatch(ctx context.Context, batch []*batchReq) {
	ids := batch[0].ids
	if len(batch) > 1 {
		ids = mergeIDs(batch)
	}
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

func mergeIDs(batch []*batchReq) []string {
	n := 0
	for _, r := range batch {
		n += len(r.ids)
	}
	seen := make(map[string]struct{}, n)
	ids := make([]string, 0, n)
	for _, r := range batch {
		for _, id := range r.ids {
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				ids = append(ids, id)
			}
		}
	}
	return ids
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

// reqQueue holds the requests taken from the channel and not yet in a batch.
type reqQueue struct {
	reqs []*batchReq
	ids  int // in reqs, repeats counted
}

func (q *reqQueue) len() int { return len(q.reqs) }

func (q *reqQueue) push(r *batchReq) {
	q.reqs = append(q.reqs, r)
	q.ids += len(r.ids)
}

// take removes the first requests, as many as fit in max ids (at least
// one), and returns them as a batch.
func (q *reqQueue) take(maxIDs int) []*batchReq {
	n, ids := 1, len(q.reqs[0].ids)
	for n < len(q.reqs) && ids+len(q.reqs[n].ids) <= maxIDs {
		ids += len(q.reqs[n].ids)
		n++
	}
	batch := make([]*batchReq, n)
	copy(batch, q.reqs)
	rest := copy(q.reqs, q.reqs[n:])
	clear(q.reqs[rest:])
	q.reqs = q.reqs[:rest]
	q.ids -= ids
	return batch
}

func (q *reqQueue) fail(err error) {
	for _, r := range q.reqs {
		r.done <- err
	}
	q.reqs, q.ids = nil, 0
}
