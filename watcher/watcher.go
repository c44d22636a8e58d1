package watcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// State is the replicated state the watcher reads.
type State interface {
	Overdue(now, watchingSince time.Time) (due []fsm.Open, next time.Time)
	Due(now time.Time) (repeats []fsm.RepeatDue, stable []fsm.StableDue, next time.Time)
	WindowsDue(now time.Time) (due []fsm.WindowDue, next time.Time)
	PendingActions() []fsm.PendingAction
	PendingSignal() <-chan struct{}
	Service(id string) (fsm.Service, bool)
}

// Cluster commits the watcher's decisions; it works only on the leader.
type Cluster interface {
	Apply(ctx context.Context, c fsm.Command) (any, error)
	VerifyLeader(ctx context.Context) error
	// Now is the time the leader stamps into what it commits. It moves
	// with the leader's monotonic clock, so that silence measured as the
	// difference between Now and a stamp is immune to steps of the wall
	// clock.
	Now() time.Time
	// CommitConfig commits c if check allows it, given the committed
	// configuration (see cluster.Node.CommitConfig).
	CommitConfig(ctx context.Context, c fsm.Configure, check func(fsm.ConfigInfo) error) (fsm.ConfigInfo, error)
	// SettleHeartbeats returns once the heartbeats this node received
	// before the call are committed or have failed.
	SettleHeartbeats(ctx context.Context) error
}

// Action is something done about an event: a restart, a page, a log line.
type Action interface {
	Run(ctx context.Context, ev Event) error
}

// Event is what an action is told. It is the same for every delivery of
// one event of one incident, whichever leader makes it, except Node.
type Event struct {
	Service  string
	Incident string
	Kind     fsm.Event
	Repeat   int           // for a repeat, which one (1, 2, ...)
	LastSeen time.Time     // the heartbeat the service went silent after
	Timeout  time.Duration // the service's timeout; 0 for a scheduled service
	// Schedule is a scheduled service's schedule, zone and grace, as
	// notifications say it ("30 2 * * * (Europe/Berlin), grace 30m0s").
	Schedule string
	Node     string    // the leader delivering it
	Time     time.Time // when it happened: the incident opened, or was resolved
	// Why it went down: fsm.ReasonTimeout, ReasonFail or ReasonExitStatus
	// (with ExitStatus); empty for an incident an older build opened.
	Reason     string
	ExitStatus int
	// Note is the note of the ping that took it down (for a timeout, of
	// its last contact when that was a ping); RecoveryNote that of the
	// ping that resolved it. One printable line, bounded (fsm.MaxIncidentNote).
	Note         string
	RecoveryNote string
	DownSince    time.Time // when the incident opened; zero when unknown
}

// DownFor is how long the service has been down when the event happened;
// for a recovery, the downtime.
func (ev Event) DownFor() time.Duration {
	if ev.DownSince.IsZero() {
		return 0
	}
	return max(ev.Time.Sub(ev.DownSince), 0)
}

// DefaultCheckInterval bounds how long a newly created or changed service
// can wait before the watcher looks at it; known deadlines are met exactly.
const DefaultCheckInterval = 250 * time.Millisecond

// Config says what the watcher enforces.
type Config struct {
	CheckInterval time.Duration
	Actions       map[string]Action
	// Desired is this node's config file's configuration. The leader
	// commits it only while the cluster has never committed one: after
	// that the committed configuration is the cluster's, and a node whose
	// file differs leads on it all the same. Nil: no config file.
	Desired *fsm.Configure
	Logger  *slog.Logger
	NodeID  string // this node, named in what notifications say
}

// Watcher is the leader-only expiry loop.
type Watcher struct {
	cfg     Config
	state   State
	cluster Cluster
	log     *slog.Logger

	slots   chan struct{} // bounds the actions running at once
	metrics *metrics
	// redact removes the actions' secrets from every error before it is
	// committed or logged: what is committed is shown by every read route.
	redact *Redactor

	mu    sync.Mutex
	owned map[runKey]*run // actions this leader has started
}

// maxConcurrentActions bounds how many actions run at the same time.
const maxConcurrentActions = 64

type runKey struct {
	incident, action string
	event            fsm.Event
	repeat           int
}

// run is one action this leader started. Once finished, its outcome stays
// here until committed, so a failed commit is retried without running the
// action again.
type run struct {
	finished bool
	recorded bool
	result   fsm.ActionResult
}

// New returns a watcher; Run it while leader.
func New(cfg Config, state State, cluster Cluster) *Watcher {
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	red := NewRedactor(ActionSecrets(cfg.Actions))
	return &Watcher{cfg: cfg, state: state, cluster: cluster, log: slog.New(red.Handler(cfg.Logger.Handler())),
		slots: make(chan struct{}, maxConcurrentActions), metrics: newMetrics(), redact: red}
}

// Run watches until ctx ends (leadership lost). since is when this node became
// leader, in the cluster's time (Cluster.Now): no service is overdue before
// since plus its timeout, because while there was no leader its heartbeats
// could not be committed.
func (w *Watcher) Run(ctx context.Context, since time.Time) {
	w.mu.Lock()
	w.owned = make(map[runKey]*run)
	w.mu.Unlock()
	var wg sync.WaitGroup
	defer wg.Wait()
	w.commitConfig(ctx)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-w.state.PendingSignal():
		}
		// Windows first: a service they resume is watched by expire.
		ended := w.endWindows(ctx)
		next := earliest(earliest(w.expire(ctx, since), w.decide(ctx)), ended)
		w.startActions(ctx, &wg)
		wait := w.cfg.CheckInterval
		if !next.IsZero() {
			wait = min(wait, next.Sub(w.cluster.Now()))
		}
		timer.Reset(max(wait, time.Millisecond))
	}
}

// errConfigured is commitConfig's check refusing: the cluster has a
// configuration already.
var errConfigured = errors.New("the cluster has a committed configuration")

// commitConfig commits this node's configuration if the cluster has none
// yet (its first leader with a config file), retrying until it commits,
// the cluster turns out to have one, or leadership ends.
func (w *Watcher) commitConfig(ctx context.Context) {
	if w.cfg.Desired == nil {
		return
	}
	for {
		c := *w.cfg.Desired
		c.At = w.cluster.Now().UnixNano()
		info, err := w.cluster.CommitConfig(ctx, c, func(info fsm.ConfigInfo) error {
			if info.Generation != 0 {
				return errConfigured
			}
			return nil
		})
		switch {
		case err == nil:
			w.log.Info("committed this node's config file as the cluster's first configuration",
				"services", len(c.Services), "hash", info.Hash, "generation", info.Generation)
			return
		case errors.Is(err, errConfigured):
			return
		}
		w.log.Warn("commit configuration, retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.cfg.CheckInterval):
		}
	}
}

// maxOpensPerEntry bounds an incident entry: a mass expiry commits in a few
// entries of this size, each small enough that heartbeats queued behind it
// keep their latency.
const maxOpensPerEntry = 2000

// expire opens incidents for every overdue service, in as few entries as
// maxOpensPerEntry allows, and returns when to look again.
func (w *Watcher) expire(ctx context.Context, since time.Time) time.Time {
	now := w.cluster.Now()
	due, next := w.state.Overdue(now, since)
	if len(due) == 0 {
		return next
	}
	// Heartbeats received in time may still wait behind a slow commit (a
	// stalled disk, a starved quorum): they go into the log first, and
	// void the incidents of the services they were for.
	if err := w.cluster.SettleHeartbeats(ctx); err != nil {
		w.log.Warn("settle heartbeats before opening incidents", "services", len(due), "err", err)
		return now.Add(w.cfg.CheckInterval)
	}
	for chunk := range slices.Chunk(due, maxOpensPerEntry) {
		resp, err := w.cluster.Apply(ctx, fsm.Incidents{At: now.UnixNano(), Opens: chunk})
		if err != nil {
			w.log.Warn("commit incidents", "services", len(chunk), "err", err)
			return now.Add(w.cfg.CheckInterval)
		}
		opened, _ := resp.(fsm.Opened)
		for i, id := range opened {
			if id != "" {
				w.metrics.incidents.Inc()
				w.log.Warn("service down", "service", chunk[i].Service, "incident", id,
					"last_seen", time.Unix(0, chunk[i].LastSeen).UTC().Format(time.RFC3339Nano))
			}
		}
	}
	return next
}

// startActions starts every pending action this leader has not started yet,
// and retries the commit of outcomes that did not commit.
func (w *Watcher) startActions(ctx context.Context, wg *sync.WaitGroup) {
	pending := w.state.PendingActions()
	// Forget only what this snapshot no longer owes: a run recorded since
	// an older snapshot was taken must not look unstarted to it.
	live := make(map[runKey]bool, len(pending))
	for _, p := range pending {
		live[runKey{p.Incident, p.Run.Action, p.Run.Event, p.Run.Repeat}] = true
	}
	w.mu.Lock()
	for k, r := range w.owned {
		if r.recorded && !live[k] {
			delete(w.owned, k)
		}
	}
	w.mu.Unlock()
	for _, p := range pending {
		key := runKey{p.Incident, p.Run.Action, p.Run.Event, p.Run.Repeat}
		w.mu.Lock()
		r, started := w.owned[key]
		if !started {
			w.owned[key] = &run{}
		}
		recorded := started && r.recorded
		w.mu.Unlock()
		switch {
		case recorded:
		case !started:
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A mass expiry must not start thousands of processes
				// at once; the rest wait their turn.
				select {
				case w.slots <- struct{}{}:
					defer func() { <-w.slots }()
				case <-ctx.Done():
					return
				}
				w.perform(ctx, key, p)
			}()
		case r.finished:
			w.record(ctx, key, r.result)
		}
	}
}

// perform runs one action by its retry policy, confirming leadership with
// a quorum before every attempt, and commits its outcome: attempts made,
// and the last error if it failed. If leadership is lost before or during
// the delivery, nothing is recorded and it stays pending for the next
// leader: at least once, never silently lost.
func (w *Watcher) perform(ctx context.Context, key runKey, p fsm.PendingAction) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	res := fsm.ActionResult{Service: p.Service, Incident: p.Incident, Action: p.Run.Action, Event: p.Run.Event, Repeat: p.Run.Repeat}
	act, ok := w.cfg.Actions[p.Run.Action]
	var err error
	if !ok {
		err = fmt.Errorf("action %q is not defined in this node's configuration", p.Run.Action)
	} else {
		var policy RetryPolicy
		if r, ok := act.(retrier); ok {
			policy = r.RetryPolicy()
		}
		ev := w.event(p)
		n := 0
		count := w.metrics.counter(act)
		res.Attempts, err = policy.Do(ctx, func(actx context.Context) error {
			if verr := w.cluster.VerifyLeader(ctx); verr != nil {
				w.log.Warn("skip action: leadership not confirmed", "action", p.Run.Action, "service", p.Service, "err", verr)
				cancel(verr)
				return verr
			}
			n++
			return w.attempted(ctx, p, policy, n, count.run(actx, ev))
		})
		count.finish()
	}
	if ctx.Err() != nil {
		return
	}
	res.State = fsm.ActionDone
	if err != nil {
		res.State, res.Error = fsm.ActionFailed, w.redact.String(err.Error())
		w.log.Error("action failed", "action", p.Run.Action, "event", p.Run.Event, "service", p.Service,
			"incident", p.Incident, "attempts", res.Attempts, "err", res.Error)
	}
	res.At = w.cluster.Now().UnixNano()
	w.mu.Lock()
	w.owned[key] = &run{finished: true, result: res}
	w.mu.Unlock()
	w.record(ctx, key, res)
}

// retrier is an action whose failed attempts are worth retrying (a
// notification); others (exec, log) run once per event.
type retrier interface {
	RetryPolicy() RetryPolicy
}

// event is what the actions of p are told. Its times come from the
// committed incident, so every leader tells the same story.
func (w *Watcher) event(p fsm.PendingAction) Event {
	ev := Event{Service: p.Service, Incident: p.Incident, Kind: p.Run.Event, Repeat: p.Run.Repeat,
		LastSeen: time.Unix(0, p.LastSeen), Node: w.cfg.NodeID, Time: w.cluster.Now()}
	s, ok := w.state.Service(p.Service)
	if !ok {
		return ev
	}
	if s.Def != nil {
		ev.Timeout = s.Def.Timeout
		if s.Def.Schedule != "" {
			ev.Schedule = fmt.Sprintf("%s (%s), grace %s", s.Def.Schedule, cmp.Or(s.Def.TZ, fsm.DefaultTZ), s.Def.Grace)
		}
	}
	i := slices.IndexFunc(s.Incidents, func(inc fsm.Incident) bool { return inc.ID == p.Incident })
	if i < 0 {
		return ev
	}
	inc := s.Incidents[i]
	ev.Reason, ev.ExitStatus, ev.Note, ev.RecoveryNote = inc.Reason, inc.ExitStatus, inc.Note, inc.RecoveryNote
	if inc.Opened != 0 {
		ev.DownSince = time.Unix(0, inc.Opened)
	}
	switch {
	case p.Run.Owed != 0:
		// Committed with the run: when its event happened.
		ev.Time = time.Unix(0, p.Run.Owed)
	case p.Run.Event == fsm.EventRecovered && inc.Resolved != 0:
		ev.Time = time.Unix(0, inc.Resolved)
	case inc.Opened != 0:
		ev.Time = time.Unix(0, inc.Opened)
	}
	return ev
}

func (w *Watcher) record(ctx context.Context, key runKey, res fsm.ActionResult) {
	if _, err := w.cluster.Apply(ctx, res); err != nil && !errors.Is(err, context.Canceled) {
		w.log.Warn("commit action result, will retry", "action", res.Action, "incident", res.Incident, "err", err)
		return
	}
	w.mu.Lock()
	w.owned[key] = &run{finished: true, recorded: true, result: res}
	w.mu.Unlock()
}
