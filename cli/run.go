package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// childExit is the exit status of the command "watchdog run" ran, which
// becomes its own.
type childExit int

func (e childExit) Error() string { return "command exited with status " + strconv.Itoa(int(e)) }

// exitCannotRun is the shell's status for a command that could not start.
const exitCannotRun = 127

// defaultPingTimeout bounds each ping of "watchdog run": short, since the job
// waits for its start ping and a monitoring outage must not delay it long.
const defaultPingTimeout = 5 * time.Second

// runRun runs a command under watch: a start ping before, another every
// -every while it runs, and its exit status with the end of its output after.
// The pings are best effort: the command runs, and its status is returned,
// whether or not the cluster can be reached.
func runRun(ctx context.Context, args []string, env Env) error {
	f := newCLIFlags(env, "run", "-id ID -- COMMAND [ARGS...]", `
Runs COMMAND directly (no shell) and tells the cluster about it, as the
healthchecks.io wrappers do: /ping/ID/start before (creating ID if the
cluster does not know it), the start again every -every while it runs (so a
long run is not taken for silence, and a service down from an earlier run
does not look recovered before this one succeeds), and /ping/ID/<exit status>
after, with the last lines of its output (at most 10000 bytes) as the note.
A non-zero status raises an incident at once. All pings carry one run id.

The pings are best effort: the command runs even when no node can be
reached, each ping gives up after -ping-timeout (retries across the nodes
included) and a failed one is reported on stderr. Exits with the command's
status (127 if it could not start), never with the pings'.`)
	id := f.String("id", "", "the service `ID` to report to (required)")
	every := f.Duration("every", 0, "re-send the start this `often` while the command runs\n(default: half the service's timeout)")
	pingTimeout := f.Duration("ping-timeout", 0, "give up on each ping after this `duration`, retries included\n(env WATCHDOG_PING_TIMEOUT, default 5s; -timeout, if given, is taken for it)")
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	argv := f.Args()
	if _, err := f.serviceID(*id); err != nil {
		return err
	}
	if len(argv) == 0 {
		return f.usageError("no command given: watchdog run -id ID -- COMMAND [ARGS...]")
	}
	if err := f.setPingTimeout(*pingTimeout); err != nil {
		return err
	}
	r := &runner{f: f, env: env, id: *id, rid: newRunID()}
	// The client is built once, so that a bad -addr or TLS flag is a usage
	// error before anything runs, not a failed ping.
	_, cancel, _, err := f.client(ctx)
	if err != nil {
		return err
	}
	cancel()
	startErr := r.send(ctx, "/start", nil)
	if startErr != nil {
		fmt.Fprintf(env.Stderr, "watchdog run: %v; running the command anyway\n", startErr)
	}
	if ctx.Err() != nil {
		return ctx.Err() // interrupted while starting: the command never ran
	}
	interval := *every
	if interval <= 0 {
		interval = r.halfTimeout(ctx, startErr == nil)
	}
	return r.run(ctx, argv, interval)
}

// setPingTimeout makes f.timeout, which bounds every call f.client makes,
// the bound of one ping: -ping-timeout, else an explicit -timeout (what
// bounded each ping before -ping-timeout existed), else
// $WATCHDOG_PING_TIMEOUT, else defaultPingTimeout.
func (f *cliFlags) setPingTimeout(flagValue time.Duration) error {
	explicitTimeout := false
	f.Visit(func(fl *flag.Flag) { explicitTimeout = explicitTimeout || fl.Name == "timeout" })
	switch env := f.env.Getenv("WATCHDOG_PING_TIMEOUT"); {
	case flagValue != 0:
		f.timeout = flagValue
	case explicitTimeout:
	case env != "":
		d, err := time.ParseDuration(env)
		if err != nil || d <= 0 {
			return f.usageError("$WATCHDOG_PING_TIMEOUT: %q is not a positive duration", env)
		}
		f.timeout = d
	default:
		f.timeout = defaultPingTimeout
	}
	if f.timeout <= 0 {
		return f.usageError("-ping-timeout must be positive")
	}
	return nil
}

// runner is one "watchdog run".
type runner struct {
	f       *cliFlags
	env     Env
	id, rid string
}

// ping sends /ping/ID<suffix>, retrying across the nodes for one ping
// timeout, and reports a failure on stderr: the caller goes on either way.
// Every ping may create the service, so that a run is never lost for a
// service deleted meanwhile.
func (r *runner) ping(ctx context.Context, suffix string, note []byte) error {
	err := r.send(ctx, suffix, note)
	if err != nil {
		fmt.Fprintln(r.env.Stderr, "watchdog run:", err)
	}
	return err
}

func (r *runner) send(ctx context.Context, suffix string, note []byte) error {
	ctx, cancel, c, err := r.f.client(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	q := "create=1&rid=" + r.rid
	if note == nil {
		note = []byte{}
	}
	if _, _, err := c.doBody(ctx, "POST", "/ping/"+url.PathEscape(r.id)+suffix+"?"+q, note); err != nil {
		return fmt.Errorf("ping %s%s: %w", r.id, suffix, err)
	}
	return nil
}

// halfTimeout is half the service's committed timeout, or 5s if it cannot
// be read (nor is tried, when the start could not be sent): a start is then
// re-sent well before the run looks silent.
func (r *runner) halfTimeout(ctx context.Context, reachable bool) time.Duration {
	const fallback = 5 * time.Second
	if !reachable {
		return fallback
	}
	ctx, cancel, c, err := r.f.client(ctx)
	if err != nil {
		return fallback
	}
	defer cancel()
	_, s, err := c.Service(ctx, r.id)
	d := s.Timeout
	if err != nil || d <= 0 {
		fmt.Fprintf(r.env.Stderr, "watchdog run: cannot read the timeout of %s; re-sending the start every 5s\n", r.id)
		return fallback
	}
	return max(d/2, 50*time.Millisecond)
}

// run runs argv, re-sending the start every interval, then reports its end.
func (r *runner) run(ctx context.Context, argv []string, interval time.Duration) error {
	tail := &tailBuffer{max: fsm.MaxPingNote}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = os.Stdin
	cmd.Stdout, cmd.Stderr = io.MultiWriter(r.env.Stdout, tail), io.MultiWriter(r.env.Stderr, tail)
	// Asked to stop, the command gets SIGTERM, as a service manager would.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	if err := cmd.Start(); err != nil {
		note := []byte(err.Error())
		_ = r.ping(context.WithoutCancel(ctx), "/"+strconv.Itoa(exitCannotRun), note) // reported by ping
		return fmt.Errorf("%w: %w", childExit(exitCannotRun), err)
	}
	done := make(chan struct{})
	beats := sync.WaitGroup{}
	beats.Go(func() { r.keepAlive(ctx, done, interval) })
	waitErr := cmd.Wait()
	close(done)
	beats.Wait()
	code := exitStatus(cmd.ProcessState, waitErr)
	// The end is reported even when this process was asked to stop: the
	// cluster should hear that the run ended, and how.
	_ = r.ping(context.WithoutCancel(ctx), "/"+strconv.Itoa(code), tail.lines()) // reported by ping
	if code != 0 {
		return childExit(code)
	}
	return nil
}

// keepAlive re-sends the start until done. The command goes on either way;
// while the cluster stays unreachable only the first failure is reported,
// so that a long job's stderr is not flooded, and the return is told.
func (r *runner) keepAlive(ctx context.Context, done <-chan struct{}, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
			err := r.send(ctx, "/start", nil)
			switch {
			case err != nil && !failing:
				fmt.Fprintf(r.env.Stderr, "watchdog run: %v (retrying every %s, quietly)\n", err, interval)
			case err == nil && failing:
				fmt.Fprintf(r.env.Stderr, "watchdog run: ping %s/start: reached the cluster again\n", r.id)
			}
			failing = err != nil
		}
	}
}

// exitStatus is the command's status as a shell gives it: 128+N when
// signal N killed it.
func exitStatus(ps *os.ProcessState, err error) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if code := ps.ExitCode(); code >= 0 && code <= 255 {
		return code
	}
	return 1
}

// newRunID is a random (version 4) UUID, the run id healthchecks accepts.
func newRunID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
