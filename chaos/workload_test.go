package chaos

// The workload: goroutines that beat services through random nodes and
// record every acknowledged heartbeat and every failed attempt.

import (
	"context"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// workload beats services through random nodes, as clients behind a load
// balancer would: each round tries the nodes in a random order until one
// answers 200, and records that acknowledgement.
type workload struct {
	c      *cluster
	client *http.Client
	period time.Duration

	mu       sync.Mutex
	acks     []Ack
	fails    []Attempt
	failed   int // rounds in which no node acknowledged
	attempts int
	stopAt   map[string]time.Time
	stops    map[string]chan struct{}
	wg       sync.WaitGroup
	done     map[string]chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	// hold is held for reading by every round: pause takes it to stop all
	// heartbeats for a moment (replicas read at one applied index).
	hold sync.RWMutex
}

const attemptTimeout = 1500 * time.Millisecond

func newWorkload(c *cluster) *workload {
	return &workload{c: c, period: 300 * time.Millisecond,
		client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64,
			DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}},
		stopAt: map[string]time.Time{}, stops: map[string]chan struct{}{}, done: map[string]chan struct{}{}}
}

func (w *workload) start(services []string) {
	ctx, cancel := context.WithCancel(context.Background())
	w.ctx, w.cancel = ctx, cancel
	for i, svc := range services {
		// Spread the services over the period.
		w.launch(ctx, svc, w.period*time.Duration(i)/time.Duration(len(services)))
	}
}

// launch beats svc from after delay until it is stopped or ctx ends.
func (w *workload) launch(ctx context.Context, svc string, delay time.Duration) {
	stop, done := make(chan struct{}), make(chan struct{})
	w.mu.Lock()
	w.stops[svc], w.done[svc] = stop, done
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(done)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		w.beat(ctx, svc, stop)
	}()
}

// add starts beating services (not beaten before) now, after start.
func (w *workload) add(services ...string) {
	for _, svc := range services {
		w.launch(w.ctx, svc, 0)
	}
}

// pause stops every heartbeat once the rounds under way are done, until
// resume.
func (w *workload) pause()  { w.hold.Lock() }
func (w *workload) resume() { w.hold.Unlock() }

// beat heartbeats svc until stopped; a stop takes effect only after an
// acknowledged round, so nothing is sent after the last acknowledgement.
func (w *workload) beat(ctx context.Context, svc string, stop <-chan struct{}) {
	for {
		if !w.round(ctx, svc) {
			if ctx.Err() != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		jitter := time.Duration(time.Now().UnixNano()%100-50) * time.Millisecond
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(w.period + jitter):
		}
		select {
		case <-stop:
			return
		default:
		}
	}
}

func (w *workload) round(ctx context.Context, svc string) bool {
	w.hold.RLock()
	defer w.hold.RUnlock()
	order := randPerm(len(w.c.nodes))
	for _, i := range order {
		n := w.c.nodes[i]
		sent := time.Now()
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		req, _ := http.NewRequestWithContext(actx, http.MethodPost, n.url("/v1/heartbeat/"+svc), nil)
		resp, err := w.client.Do(req)
		ok, result := false, ""
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			ok, result = resp.StatusCode == http.StatusOK, resp.Status
		} else {
			result = err.Error()
			if errors.Is(err, context.DeadlineExceeded) {
				result = "timeout"
			}
		}
		cancel()
		acked := time.Now()
		w.mu.Lock()
		w.attempts++
		if ok {
			w.acks = append(w.acks, Ack{Service: svc, Node: n.id, Sent: sent, Acked: acked})
		} else {
			w.fails = append(w.fails, Attempt{Service: svc, Node: n.id, Sent: sent, Done: acked, Result: result})
		}
		w.mu.Unlock()
		if ok {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
	}
	w.mu.Lock()
	w.failed++
	w.mu.Unlock()
	return false
}

// silence stops svc's heartbeats (after its current round succeeds).
func (w *workload) silence(svc string) {
	w.mu.Lock()
	w.stopAt[svc] = time.Now()
	stop := w.stops[svc]
	w.mu.Unlock()
	close(stop)
}

// waitSilent waits until svc's client has sent its last heartbeat.
func (w *workload) waitSilent(svc string, within time.Duration) bool {
	w.mu.Lock()
	done := w.done[svc]
	w.mu.Unlock()
	select {
	case <-done:
		return true
	case <-time.After(within):
		return false
	}
}

func (w *workload) stopAll() {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
}

// snapshot copies what has been recorded so far.
func (w *workload) snapshot() (acks []Ack, silenced map[string]time.Time, failed, attempts int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	silenced = map[string]time.Time{}
	for k, v := range w.stopAt {
		silenced[k] = v
	}
	return append([]Ack(nil), w.acks...), silenced, w.failed, w.attempts
}

func (w *workload) failures() []Attempt {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.fails)
}

func randPerm(n int) []int { return rand.Perm(n) }

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
