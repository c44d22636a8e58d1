package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/watchdog-ha/watchdog/client"
	"github.com/watchdog-ha/watchdog/fsm"
)

// The bench's services are its own and must never page anyone: they are
// defined, before the load, without actions and with a timeout the bench
// outlasts, tagged benchTag, and deleted when it ends (interrupted too).
// Left behind by a bench that was killed, they are found by their prefix
// or tag: watchdog delete -tag watchdog-bench -yes.
const (
	benchTag           = "watchdog-bench"
	benchPrefixDefault = "wdbench-" // then a random part per run, then the number
	benchFleetWorkers  = 16         // defines or deletes in flight at once
	benchCleanupTime   = 5 * time.Minute
)

// newBenchPrefix is the prefix of one run's ids: random, so that a run never
// takes over, nor deletes, the services of another (or a real one).
func newBenchPrefix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return benchPrefixDefault + hex.EncodeToString(b) + "-"
}

// benchFleet is the bench's services on a watchdog cluster.
type benchFleet struct {
	c       *client.Client
	cfg     *benchConfig
	stderr  io.Writer
	defined []string // what to delete at the end
}

// prepareBench defines the bench's services on the cluster at cfg.Addrs,
// after a warning if the cluster runs actions for its own services. A
// server that answers but is not a watchdog (the no-op baseline) gets
// heartbeats only: the fleet is then nil.
func prepareBench(ctx context.Context, cfg *benchConfig, apiToken string, stderr io.Writer) (*benchFleet, error) {
	c, err := client.New(cfg.Addrs, client.WithAPIToken(apiToken), client.WithTimeout(cfg.Timeout),
		client.WithUserAgent("watchdog-bench"))
	if err != nil {
		return nil, err
	}
	svcs, err := c.Services(ctx)
	var apiErr *client.APIError
	var notJSON *json.SyntaxError
	switch {
	case err == nil:
	case errors.As(err, &notJSON), errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
		fmt.Fprintf(stderr, "watchdog bench: %s is not a watchdog (no services list): sending heartbeats only\n", cfg.Addrs[0])
		return nil, nil
	default:
		return nil, fmt.Errorf("bench: read the cluster's services: %w", err)
	}
	warnOfActions(stderr, svcs, cfg.Prefix)
	f := &benchFleet{c: c, cfg: cfg, stderr: stderr}
	if err := f.define(ctx); err != nil {
		f.remove(context.WithoutCancel(ctx))
		return nil, err
	}
	return f, nil
}

// warnOfActions tells, before the load, that a cluster with actions may
// page for real: the load may delay its own services' heartbeats.
func warnOfActions(w io.Writer, svcs []client.Service, prefix string) {
	var paging []string
	for _, s := range svcs {
		if len(s.Actions) > 0 && !strings.HasPrefix(s.ID, prefix) {
			paging = append(paging, s.ID)
		}
	}
	if len(paging) == 0 {
		return
	}
	fmt.Fprintf(w, "watchdog bench: WARNING: this cluster runs actions for %d services (%s): the load may delay "+
		"their heartbeats until they go down and page. The bench's own services (%s*) have no actions and are deleted when it ends.\n",
		len(paging), abbreviate(paging), prefix)
}

// definition is a bench service's: no actions, and a timeout longer than
// the whole run, so that none goes down before it is deleted.
func (f *benchFleet) definition() client.Definition {
	return client.Definition{
		Timeout: min(f.cfg.Warmup+f.cfg.Duration+time.Hour, fsm.MaxPeriod),
		Actions: []string{}, OnRecovered: []string{}, Tags: []string{benchTag},
		Description: "watchdog bench service: no actions, deleted when the bench ends",
	}
}

func (f *benchFleet) define(ctx context.Context) error {
	ids := make([]string, f.cfg.Services)
	for i := range ids {
		ids[i] = f.cfg.serviceID(i)
	}
	begin := time.Now()
	def := f.definition()
	done, err := f.each(ctx, ids, func(ctx context.Context, id string) error {
		_, err := f.c.Define(ctx, id, def)
		return err
	})
	f.defined = done
	if err != nil {
		return fmt.Errorf("bench: define the bench services: %w", err)
	}
	fmt.Fprintf(f.stderr, "watchdog bench: defined %d services %s000000… without actions in %s\n",
		len(done), f.cfg.Prefix, time.Since(begin).Round(time.Millisecond))
	return nil
}

// remove deletes the services the bench defined, then any with its prefix
// still listed (one a heartbeat that timed out on our side brought back),
// and says how to finish the job if it could not.
func (f *benchFleet) remove(ctx context.Context) {
	if f == nil || len(f.defined) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, benchCleanupTime)
	defer cancel()
	begin := time.Now()
	fmt.Fprintf(f.stderr, "watchdog bench: deleting its %d services…\n", len(f.defined))
	var deleted atomic.Int64 // 404s, from a replica listing what is gone already, are not counted
	del := func(ctx context.Context, id string) error {
		err := f.c.Delete(ctx, id)
		var apiErr *client.APIError
		switch {
		case err == nil:
			deleted.Add(1)
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
			return nil
		}
		return err
	}
	_, err := f.each(ctx, f.defined, del)
	if err == nil {
		err = f.sweep(ctx, del)
	}
	if err != nil {
		fmt.Fprintf(f.stderr, "watchdog bench: deleted %d of its %d services, then: %v\n"+
			"watchdog bench: delete the rest with: watchdog delete -prefix %s -yes\n",
			deleted.Load(), len(f.defined), err, f.cfg.Prefix)
		return
	}
	fmt.Fprintf(f.stderr, "watchdog bench: deleted its %d services in %s\n", deleted.Load(), time.Since(begin).Round(time.Millisecond))
}

// sweep deletes the services with the bench's prefix that are still listed.
func (f *benchFleet) sweep(ctx context.Context, del func(context.Context, string) error) error {
	svcs, err := f.c.Services(ctx)
	if err != nil {
		return err
	}
	var left []string
	for _, s := range svcs {
		if strings.HasPrefix(s.ID, f.cfg.Prefix) {
			left = append(left, s.ID)
		}
	}
	_, err = f.each(ctx, left, del)
	return err
}

// each calls do for every id, a few at once, until the first error, and
// returns the ids it succeeded for.
func (f *benchFleet) each(ctx context.Context, ids []string, do func(context.Context, string) error) ([]string, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		done []string
		wg   sync.WaitGroup
	)
	next := make(chan string)
	for range min(benchFleetWorkers, len(ids)) {
		wg.Go(func() {
			for id := range next {
				if err := do(ctx, id); err != nil {
					cancel(fmt.Errorf("%s: %w", id, err))
					continue
				}
				mu.Lock()
				done = append(done, id)
				mu.Unlock()
			}
		})
	}
feed:
	for _, id := range ids {
		select {
		case next <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return done, context.Cause(ctx)
}

// abbreviate lists a few ids and how many more.
func abbreviate(ids []string) string {
	const shown = 5
	if len(ids) <= shown {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:shown], ", "), len(ids)-shown)
}
