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
// The rule is a token bucket: a batch may start when it finds a token;
// tokens come one per spacing, and up to burst of them wait unused. So a
// heartbeat on an idle node finds one and goes at once (a lone heartbeat is
// never delayed, nor is a steady trickle slower than one per spacing, whose
// arrivals jitter around the spacing); a batch that holds fill ids goes at
// once too (enough to pay for its entry: heavy load is never held back);
// any other batch waits for the next token, with everything that arrived
// meanwhile. Under load there are at most 1/spacing batches a second that
// are not full (and burst more), and each heartbeat waits at most spacing.
//
// Up to inflight batches run at once, on as many long-lived workers: a
// commit's round trip (an fsync on a quorum) or a forward's does not hold
// the next batch, and neither needs a goroutine or a timer of its own.
//
// A request that finds the batcher idle (nothing queued, a token, a free
// slot) is flushed by its own caller, without the scheduler or a worker:
// three goroutine hand-offs less for the lone heartbeat, which is most of
// them at a low rate, and a little less latency on an idle cluster.
type batcher struct {
	reqs     chan *batchReq
	max      int // ids in one batch, at most
	fill     int // ids that start a batch before its token comes
	inflight int
	// free holds a token per batch that may start: inflight of them,
	// taken by the workers and by callers flushing alone.
	free  chan struct{}
	flush flushFunc
	now   func() time.Time // the clock spacing is read on (tests stop it)
	// mu guards pace and queued, read by callers to decide whether they
	// may flush alone.
	mu     sync.Mutex
	pace   pacer
	queued int // requests the scheduler holds and has not handed on
	// pool recycles requests, their channels and their ids' slices: three
	// allocations less per heartbeat. A request goes back only once its
	// answer has been taken, so no late answer can reach its next user.
	pool sync.Pool
	// sets recycles mergeIDs' sets of ids seen (map[string]struct{}): a map
	// made per batch was most of a batch's bytes.
	sets sync.Pool
}

type batchReq struct {
	// ids is a copy of the caller's, in a slice of the request's own: so
	// the caller's does not escape (a heartbeat's, of one id, stays on its
	// stack), and the slice is reused with the request.
	ids  []string
	done chan error // buffered: the batcher never blocks on a caller gone away
}

// pooledIDsMax bounds the ids' slices kept with pooled requests: a
// forwarded batch's, much larger than a heartbeat's, is left to the GC.
const pooledIDsMax = 16

// batchPolicy is how a batcher shapes its batches (see batcher).
type batchPolicy struct {
	max, fill, inflight int
	spacing             time.Duration
	burst               int // tokens that may wait unused; 0 is 1
}

// defaultBurst lets a steady trickle of one heartbeat per spacing, whose
// arrivals come a little early or late, find a token every time.
const defaultBurst = 2

// pacer is the token bucket of batcher.
type pacer struct {
	spacing time.Duration
	burst   float64
	tokens  float64
	at      time.Time // when tokens was last brought up to date
}

// wait is how long from now until a token is there (0: one is).
func (p *pacer) wait(now time.Time) time.Duration {
	if p.spacing <= 0 {
		return 0
	}
	if p.at.IsZero() {
		p.tokens = p.burst
	} else if d := now.Sub(p.at); d > 0 {
		p.tokens = min(p.burst, p.tokens+float64(d)/float64(p.spacing))
	}
	p.at = now
	if p.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - p.tokens) * float64(p.spacing))
}

// take spends a token for a batch starting now; a full batch that could not
// wait for one leaves the bucket empty, not in debt.
func (p *pacer) take(now time.Time) {
	if p.spacing > 0 {
		p.wait(now)
		p.tokens = max(p.tokens-1, 0)
	}
}

func newBatcher(p batchPolicy, flush flushFunc) *batcher {
	b := &batcher{reqs: make(chan *batchReq, 1024), max: max(p.max, 1), fill: max(min(p.fill, p.max), 1),
		pace:     pacer{spacing: p.spacing, burst: float64(max(p.burst, 1))},
		inflight: max(p.inflight, 1), flush: flush, now: time.Now}
	b.free = make(chan struct{}, b.inflight)
	for range b.inflight {
		b.free <- struct{}{}
	}
	b.pool.New = func() any { return &batchReq{done: make(chan error, 1)} }
	return b
}

// submit hands ids to the next batch and waits for its outcome.
func (b *batcher) submit(ctx context.Context, ids []string) error {
	r := b.pool.Get().(*batchReq)
	r.ids = append(r.ids[:0], ids...)
	if len(ids) <= b.max && b.startAlone() {
		return b.flushAlone(ctx, r)
	}
	return b.queue(ctx, r)
}

// queue hands r to the scheduler, behind whatever waits, and waits for its
// outcome.
func (b *batcher) queue(ctx context.Context, r *batchReq) error {
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		b.recycle(r)
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		b.recycle(r)
		return err
	case <-ctx.Done():
		// The heartbeat may still commit; the caller retries, which is
		// harmless because heartbeats are idempotent.
		return ctx.Err()
	}
}

// barrier returns once every request submitted before it has been
// answered: those still queued are flushed first, in their turn, and every
// batch already in flight has finished. It is an empty request: it takes
// no token and commits nothing of its own.
func (b *batcher) barrier(ctx context.Context) error {
	r := b.pool.Get().(*batchReq)
	r.ids = r.ids[:0]
	// The outcome of the batch it went in (committed or failed) does not
	// matter, only that it has one: only the caller giving up stops here.
	if err := b.queue(ctx, r); err != nil && ctx.Err() != nil {
		return err
	}
	// Every slot free at once: no batch that started before is in flight
	// (with inflight 1 that is already so; a caller flushing alone holds
	// a slot too).
	taken := 0
	defer func() {
		for range taken {
			b.free <- struct{}{}
		}
	}()
	for taken < b.inflight {
		select {
		case <-b.free:
			taken++
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// startAlone reports whether a request may be flushed at once by its
// caller, as a batch of its own: nothing waits before it, its token is
// there, and a slot is free (taken; the caller gives it back).
func (b *batcher) startAlone() bool {
	if len(b.reqs) > 0 {
		return false
	}
	select {
	case <-b.free:
	default:
		return false
	}
	b.mu.Lock()
	ok := b.queued == 0 && len(b.reqs) == 0
	if ok {
		now := b.now()
		if ok = b.pace.wait(now) == 0; ok {
			b.pace.take(now)
		}
	}
	b.mu.Unlock()
	if !ok {
		b.free <- struct{}{}
	}
	return ok
}

// flushAlone flushes r as a batch of its own, in the caller's goroutine,
// and gives back the slot startAlone took.
func (b *batcher) flushAlone(ctx context.Context, r *batchReq) error {
	err := b.flush(ctx, r.ids)
	if refused, ok := errors.AsType[*RefusedError](err); ok {
		err = refused.For(r.ids)
	}
	b.free <- struct{}{}
	b.recycle(r)
	return err
}

// recycle puts r back in the pool, holding no ids.
func (b *batcher) recycle(r *batchReq) {
	if cap(r.ids) > pooledIDsMax {
		r.ids = nil
	} else {
		clear(r.ids)
		r.ids = r.ids[:0]
	}
	b.pool.Put(r)
}

// run forms and flushes batches until ctx ends.
func (b *batcher) run(ctx context.Context) {
	work := make(chan []*batchReq, b.inflight)
	var wg sync.WaitGroup
	for range b.inflight {
		wg.Go(func() {
			for batch := range work {
				b.flushBatch(ctx, batch)
				b.free <- struct{}{}
			}
		})
	}
	b.schedule(ctx, work)
	close(work)
	wg.Wait()
	b.failQueued(ctx.Err())
}

// schedule decides when each batch starts and what it holds, and hands it
// to a free worker.
func (b *batcher) schedule(ctx context.Context, work chan<- []*batchReq) {
	q := reqQueue{b: b}
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
		// Barriers alone (no ids) need no token: they only keep order.
		if wait := b.wait(); wait > 0 && q.ids > 0 && q.ids < b.fill {
			timer.Reset(wait)
			ok := b.gather(ctx, &q, timer.C)
			timer.Stop()
			if !ok {
				q.fail(ctx.Err())
				return
			}
		}
		select {
		case <-b.free:
		case <-ctx.Done():
			q.fail(ctx.Err())
			return
		}
		b.drain(&q)
		if q.ids > 0 {
			b.mu.Lock()
			b.pace.take(b.now())
			b.mu.Unlock()
		}
		work <- q.take(b.max)
	}
}

// wait is how long until the next batch's token is there.
func (b *batcher) wait() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pace.wait(b.now())
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
		ids = b.merge(batch)
	}
	var err error
	if len(ids) > 0 { // not barriers alone
		err = b.flush(ctx, ids)
	}
	// AsType, not As: As's target escapes, an allocation per batch.
	refused, isRefused := errors.AsType[*RefusedError](err)
	for _, r := range batch {
		if isRefused {
			// Only the requests that carried a refused id fail.
			r.done <- refused.For(r.ids)
			continue
		}
		r.done <- err
	}
}

// pooledSetMax bounds the sets that b.sets keeps: clearing a map costs
// what it once held, so one grown by a rare huge batch is left to the GC.
const pooledSetMax = 1024

// merge is mergeIDs with a set from b.sets.
func (b *batcher) merge(batch []*batchReq) []string {
	seen, _ := b.sets.Get().(map[string]struct{})
	if seen == nil {
		seen = make(map[string]struct{}, len(batch))
	}
	ids := mergeIDs(batch, seen)
	if len(seen) <= pooledSetMax {
		clear(seen)
		b.sets.Put(seen)
	}
	return ids
}

// mergeIDs is the ids of batch, each once, in order; seen is an empty set
// to note them in.
func mergeIDs(batch []*batchReq, seen map[string]struct{}) []string {
	n := 0
	for _, r := range batch {
		n += len(r.ids)
	}
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
	b    *batcher // whose queued count it keeps
	reqs []*batchReq
	ids  int // in reqs, repeats counted
}

func (q *reqQueue) len() int { return len(q.reqs) }

func (q *reqQueue) push(r *batchReq) {
	q.reqs = append(q.reqs, r)
	q.ids += len(r.ids)
	q.count()
}

// count tells the batcher how many requests wait here.
func (q *reqQueue) count() {
	q.b.mu.Lock()
	q.b.queued = len(q.reqs)
	q.b.mu.Unlock()
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
	q.count()
	return batch
}

func (q *reqQueue) fail(err error) {
	for _, r := range q.reqs {
		r.done <- err
	}
	q.reqs, q.ids = nil, 0
	q.count()
}
