package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// benchConfig is what one run of the load generator does.
type benchConfig struct {
	Addrs    []string // host:port of each node, used round-robin
	Services int      // ids Prefix000000 ... Prefix<Services-1>
	Prefix   string   // of the ids
	Clients  int      // concurrent clients, each with its own keep-alive connections
	Duration time.Duration
	Rate     float64 // requests/s in total; 0 is closed loop
	Route    string  // routeV1 or routeQuery
	Timeout  time.Duration
	Warmup   time.Duration
}

const (
	routeV1    = "v1"    // POST /v1/heartbeat/{id}
	routeQuery = "query" // GET /heartbeat?id={id}
)

// Error kinds other than HTTP statuses, which are counted as "http_NNN".
const (
	errRefused = "refused" // nothing listens at the address
	errReset   = "reset"   // the connection was reset or closed without an answer
	errTimeout = "timeout" // no answer within -timeout (connecting included)
	errOther   = "other"
)

// benchResult is what a run measured, over the measured window only.
type benchResult struct {
	Requests uint64            // sent in the window, answered or failed
	OK       uint64            // answered 2xx
	Errors   map[string]uint64 // by kind; the fixed kinds are always present
	Unsent   uint64            // open loop: due in the window, but no client was free
	Duration time.Duration     // the window, shorter if interrupted
	Latency  *histogram        // of the 2xx answers
}

// benchTargets are the request targets, built once: building a URL per
// request would cost the generator more than the server spends on it.
type benchTargets struct {
	method string
	hosts  []string
	paths  []string // per service
	query  []string // per service, for routeQuery
}

func newBenchTargets(cfg *benchConfig) *benchTargets {
	t := &benchTargets{method: http.MethodPost, hosts: cfg.Addrs,
		paths: make([]string, cfg.Services)}
	if cfg.Route == routeQuery {
		t.method = http.MethodGet
		t.query = make([]string, cfg.Services)
	}
	for i := range cfg.Services {
		id := cfg.serviceID(i)
		if t.query != nil {
			t.paths[i], t.query[i] = "/heartbeat", "id="+id
		} else {
			t.paths[i] = "/v1/heartbeat/" + id
		}
	}
	return t
}

func (c *benchConfig) serviceID(i int) string { return fmt.Sprintf("%s%06d", c.Prefix, i) }

// runLoad drives the addresses as cfg says and returns the counts of the
// window after the warmup. Requests still in flight when the window closes
// are waited for (at most -timeout) and counted.
func runLoad(ctx context.Context, cfg *benchConfig) (*benchResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	targets := newBenchTargets(cfg)
	start := time.Now()
	w := &benchWindow{start: start, from: start.Add(cfg.Warmup), end: start.Add(cfg.Warmup + cfg.Duration)}
	if cfg.Rate > 0 {
		w.interval = float64(time.Second) / cfg.Rate
	}
	clients := make([]*benchClient, cfg.Clients)
	var wg sync.WaitGroup
	for i := range clients {
		// Interrupted, the clients stop sending but the requests in flight
		// run to their answer (-timeout at most): a heartbeat cut off on our
		// side may still be committed, and would bring back a service the
		// bench deletes as it ends.
		c, err := newBenchClient(context.WithoutCancel(ctx), i, cfg, targets)
		if err != nil {
			return nil, err
		}
		clients[i] = c
		if w.interval > 0 {
			wg.Go(func() { c.openLoop(ctx, w) })
		} else {
			wg.Go(func() { c.closedLoop(ctx, w, cfg.Clients) })
		}
	}
	wg.Wait()
	res := &benchResult{Duration: cfg.Duration, Latency: new(histogram),
		Errors: map[string]uint64{errRefused: 0, errReset: 0, errTimeout: 0, errOther: 0}}
	if ctx.Err() != nil { // interrupted: the window ends now
		res.Duration = max(0, time.Since(w.from))
	}
	for _, c := range clients {
		c.transport.CloseIdleConnections()
		res.Requests += c.requests
		res.OK += c.ok
		for k, n := range c.errs {
			res.Errors[k] += n
		}
		for code, n := range c.statuses {
			res.Errors[fmt.Sprintf("http_%d", code)] += n
		}
		res.Latency.merge(c.hist)
	}
	if w.interval > 0 && ctx.Err() == nil {
		res.Unsent = w.slotsDue() - res.Requests
	}
	return res, nil
}

// benchWindow is the time line of a run: warmup from start, the measured
// window [from, end), and for the open loop the schedule.
type benchWindow struct {
	start, from, end time.Time
	interval         float64       // ns between sends, open loop only
	next             atomic.Uint64 // open loop: the next slot to send
}

// due is when slot k is meant to be sent: on a fixed schedule, whatever
// the answers do, so a slow server shows as latency, not as fewer requests.
func (w *benchWindow) due(k uint64) time.Time {
	return w.start.Add(time.Duration(float64(k) * w.interval))
}

// firstSlotAt is the first slot due at or after t.
func (w *benchWindow) firstSlotAt(t time.Time) uint64 {
	k := uint64(float64(t.Sub(w.start)) / w.interval)
	for k > 0 && !w.due(k-1).Before(t) {
		k--
	}
	for w.due(k).Before(t) {
		k++
	}
	return k
}

// slotsDue is how many slots fall in the measured window.
func (w *benchWindow) slotsDue() uint64 {
	return w.firstSlotAt(w.end) - w.firstSlotAt(w.from)
}

// benchClient is one simulated client: its own connections (one per node
// at most, since it has one request in flight), its own counts.
type benchClient struct {
	id        int
	targets   *benchTargets
	transport *http.Transport
	http      *http.Client
	tmpl      *http.Request // method, context and headers shared by its requests
	hist      *histogram
	requests  uint64
	ok        uint64
	errs      map[string]uint64
	statuses  map[int]uint64
}

func newBenchClient(ctx context.Context, id int, cfg *benchConfig, t *benchTargets) (*benchClient, error) {
	tmpl, err := http.NewRequestWithContext(ctx, t.method, "http://"+t.hosts[0]+"/", nil)
	if err != nil {
		return nil, fmt.Errorf("bench request: %w", err)
	}
	tr := &http.Transport{
		Proxy:               nil, // measure the nodes named, never a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.Clients, // more than this client can hold: a connection is never dropped for lack of room
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &benchClient{
		id: id, targets: t, transport: tr, tmpl: tmpl, hist: new(histogram),
		http: &http.Client{Transport: tr, Timeout: cfg.Timeout},
		errs: map[string]uint64{}, statuses: map[int]uint64{},
	}, nil
}

// closedLoop sends the next request as soon as the last is answered.
// Client i sends services i, i+C, i+2C, ... and walks the nodes in turn.
func (c *benchClient) closedLoop(ctx context.Context, w *benchWindow, clients int) {
	services, hosts := len(c.targets.paths), len(c.targets.hosts)
	for j := 0; ctx.Err() == nil; j++ {
		sent := time.Now()
		if !sent.Before(w.end) {
			return
		}
		c.send(ctx, (c.id+j*clients)%services, (c.id+j)%hosts, sent, !sent.Before(w.from))
	}
}

// openLoop takes the next slot of the shared schedule, waits for its time
// and sends it. A slot taken late, because every client was busy, counts
// its latency from when it was due: that queueing is part of what a user
// would see (no coordinated omission). Slots still unsent when the window
// closes are reported as unsent.
func (c *benchClient) openLoop(ctx context.Context, w *benchWindow) {
	services, hosts := uint64(len(c.targets.paths)), uint64(len(c.targets.hosts))
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for ctx.Err() == nil {
		k := w.next.Add(1) - 1
		due := w.due(k)
		if !due.Before(w.end) {
			return
		}
		now := time.Now()
		if !now.Before(w.end) {
			return
		}
		from := due
		if wait := due.Sub(now); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
			// This client was free before the slot was due, so any delay
			// past it is our own timer waking late (about half a
			// millisecond, measured), not queueing behind the server.
			from = time.Now()
		}
		c.send(ctx, int(k%services), int(k%hosts), from, !due.Before(w.from))
	}
}

// send makes one request and, if counted, records its outcome and the
// latency from `from` to the end of the answer.
func (c *benchClient) send(ctx context.Context, service, host int, from time.Time, counted bool) {
	req := new(http.Request)
	*req = *c.tmpl
	u := url.URL{Scheme: "http", Host: c.targets.hosts[host], Path: c.targets.paths[service]}
	if c.targets.query != nil {
		u.RawQuery = c.targets.query[service]
	}
	req.URL, req.Host = &u, u.Host
	resp, err := c.http.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	done := time.Now()
	if !counted || (ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		return
	}
	c.requests++
	switch {
	case err != nil:
		c.errs[errorKind(err)]++
	case resp.StatusCode/100 != 2:
		c.statuses[resp.StatusCode]++
	default:
		c.ok++
		c.hist.record(done.Sub(from))
	}
}

// errorKind sorts a failed request into the kinds an operator acts on
// differently: nothing listening, a connection dropped, an answer too slow.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return errRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errReset
	}
	return errOther
}
