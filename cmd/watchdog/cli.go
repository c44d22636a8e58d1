package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/watchdog-ha/watchdog/client"
	"github.com/watchdog-ha/watchdog/httpapi"
)

// Exit codes of the client commands, for scripts.
const (
	exitOK          = 0
	exitFailed      = 1 // the operation failed, or what it looked at is unhealthy
	exitUsage       = 2
	exitUnavailable = 3 // no node could serve the request within -timeout
)

// errUnhealthy marks a command that worked but found its target unhealthy:
// a service down, a node not ready.
var errUnhealthy = errors.New("unhealthy")

// exitCode maps what a command returned to the process's exit status.
func exitCode(err error) int {
	var child childExit
	switch {
	case errors.As(err, &child):
		return int(child)
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, client.ErrUnavailable):
		return exitUnavailable
	default:
		return exitFailed
	}
}

const defaultClientAddr = "127.0.0.1:8080"

const exitCodesHelp = `
Exit status: 0 success; 1 the operation failed or its target is unhealthy;
2 usage error; 3 cluster unavailable (no node reachable, or no leader,
within -timeout).
`

// cliEnv is the outside world of a client command; tests give their own.
type cliEnv struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
	stdin          io.Reader // for a confirmation; nil: none
	interactive    bool      // stdin is a terminal, where a person can answer
}

func osCLIEnv(stderr io.Writer) cliEnv {
	st, err := os.Stdin.Stat()
	tty := err == nil && st.Mode()&os.ModeCharDevice != 0
	return cliEnv{stdout: os.Stdout, stderr: stderr, getenv: os.Getenv, now: time.Now, stdin: os.Stdin, interactive: tty}
}

// cliFlags are the flags every client command takes, and its usage.
type cliFlags struct {
	*flag.FlagSet
	env     cliEnv
	name    string
	addr    string
	timeout time.Duration
	tls     cliTLS // cli_tls.go
}

// newCLIFlags starts the flag set of "watchdog name"; synopsis is what
// follows [flags] on the usage line (e.g. "ID"), about what the command does.
func newCLIFlags(env cliEnv, name, synopsis, about string) *cliFlags {
	f := &cliFlags{FlagSet: flag.NewFlagSet("watchdog "+name, flag.ContinueOnError), env: env, name: name}
	f.SetOutput(env.stderr)
	f.StringVar(&f.addr, "addr", "", "comma-separated `nodes` (host:port or http URLs), tried in turn\n"+
		"(env WATCHDOG_ADDR, default "+defaultClientAddr+")")
	f.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this `duration`, retries included")
	f.addTLSFlags()
	f.Usage = func() {
		w := f.Output()
		fmt.Fprintf(w, "Usage: watchdog %s [flags] %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(about))
		f.PrintDefaults()
		fmt.Fprint(w, exitCodesHelp)
	}
	return f
}

// parse reads flags and exactly nargs positional arguments, in any order:
// "watchdog pause ID -addr x" works as well as "watchdog pause -addr x ID".
func (f *cliFlags) parse(args []string, nargs int) ([]string, error) {
	pos, err := f.parseAny(args)
	if err != nil {
		return nil, err
	}
	if len(pos) != nargs {
		return nil, f.usageError("want %d argument(s), got %d", nargs, len(pos))
	}
	return pos, nil
}

// parseAny is parse for a command that checks its arguments itself.
func (f *cliFlags) parseAny(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", errUsage, err)
		}
		if f.NArg() == 0 {
			break
		}
		// After "--" everything is an argument, even "-x" (a valid id).
		if used := len(args) - f.NArg(); used > 0 && args[used-1] == "--" {
			pos = append(pos, f.Args()...)
			break
		}
		pos = append(pos, f.Arg(0))
		args = f.Args()[1:]
	}
	return pos, nil
}

// usageError prints the problem and the usage, as the flag package does.
func (f *cliFlags) usageError(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(f.Output(), "watchdog %s: %s\n", f.name, msg)
	f.Usage()
	return fmt.Errorf("%w: %s", errUsage, msg)
}

// serviceID checks an id here, so that a typo is a usage error and not a
// round trip.
func (f *cliFlags) serviceID(id string) (string, error) {
	if !httpapi.ValidID(id) {
		return "", f.usageError("invalid service id %q: want 1-128 of A-Za-z0-9._- (not . or ..)", id)
	}
	return id, nil
}

// connect parses args, which must hold nargs arguments, and builds the
// client as client does: how every command that asks the cluster begins.
// The caller defers cancel.
func (f *cliFlags) connect(ctx context.Context, args []string, nargs int) (context.Context, context.CancelFunc, *apiClient, []string, error) {
	pos, err := f.parse(args, nargs)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, cancel, c, err := f.client(ctx)
	return ctx, cancel, c, pos, err
}

// connectService is connect for a command whose one argument is a service
// id, checked before anything else is.
func (f *cliFlags) connectService(ctx context.Context, args []string) (context.Context, context.CancelFunc, *apiClient, string, error) {
	pos, err := f.parse(args, 1)
	if err != nil {
		return nil, nil, nil, "", err
	}
	id, err := f.serviceID(pos[0])
	if err != nil {
		return nil, nil, nil, "", err
	}
	ctx, cancel, c, err := f.client(ctx)
	return ctx, cancel, c, id, err
}

// client builds the API client from -addr, else WATCHDOG_ADDR, else the
// default, and a context bounded by -timeout.
func (f *cliFlags) client(ctx context.Context) (context.Context, context.CancelFunc, *apiClient, error) {
	list, from := f.addr, "-addr"
	if list == "" {
		list, from = f.env.getenv("WATCHDOG_ADDR"), "$WATCHDOG_ADDR"
	}
	if list == "" {
		list = defaultClientAddr
	}
	tlsConf, err := f.tlsConfig()
	if err != nil {
		return nil, nil, nil, f.usageError("%v", err)
	}
	// Tokens come from the environment only: a flag would show in ps.
	apiToken, err := client.TokenFromEnv(f.env.getenv)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := newAPIClient(list, tlsConf, apiToken, f.env.getenv("WATCHDOG_PING_TOKEN"))
	if err != nil {
		return nil, nil, nil, f.usageError("%s: %v", from, err)
	}
	if f.timeout <= 0 {
		return nil, nil, nil, f.usageError("-timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	return ctx, cancel, c, nil
}

// shortDuration writes a duration as people read one at a glance.
func shortDuration(d time.Duration) string {
	d = d.Abs()
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// ago is "never" or how long before now t was.
func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	return shortDuration(now.Sub(*t)) + " ago"
}

// dueIn is "-", "in 7s" or, past it, "overdue 2s".
func dueIn(t *time.Time, now time.Time) string {
	switch {
	case t == nil:
		return "-"
	case t.Before(now):
		return "overdue " + shortDuration(now.Sub(*t))
	}
	return "in " + shortDuration(t.Sub(now))
}

// stamp is an RFC 3339 time with how long ago it was, or "-".
func stamp(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339) + " (" + ago(t, now) + ")"
}

func joinOrDash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
