package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/watchdog-ha/watchdog/client"
)

const defaultClientAddr = "127.0.0.1:8080"

const exitCodesHelp = `
Exit status: 0 success; 1 the operation failed or its target is unhealthy;
2 usage error; 3 cluster unavailable (no node reachable, or no leader,
within -timeout).
`

// cliFlags are the flags every client command takes, and its usage.
type cliFlags struct {
	*flag.FlagSet
	env     Env
	name    string
	addr    string
	timeout time.Duration
	tls     cliTLS // tls.go
}

// newCLIFlags starts the flag set of "watchdog name"; synopsis is what
// follows [flags] on the usage line (e.g. "ID"), about what the command does.
func newCLIFlags(env Env, name, synopsis, about string) *cliFlags {
	f := &cliFlags{FlagSet: flag.NewFlagSet("watchdog "+name, flag.ContinueOnError), env: env, name: name}
	f.SetOutput(env.Stderr)
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
			return nil, fmt.Errorf("%w: %w", ErrUsage, err)
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
	return fmt.Errorf("%w: %s", ErrUsage, msg)
}

// serviceID checks an id here, so that a typo is a usage error and not a
// round trip.
func (f *cliFlags) serviceID(id string) (string, error) {
	if !client.ValidID(id) {
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
		list, from = f.env.Getenv("WATCHDOG_ADDR"), "$WATCHDOG_ADDR"
	}
	if list == "" {
		list = defaultClientAddr
	}
	tlsConf, err := f.tlsConfig()
	if err != nil {
		return nil, nil, nil, f.usageError("%v", err)
	}
	// Tokens come from the environment only: a flag would show in ps.
	apiToken, err := client.TokenFromEnv(f.env.Getenv)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := newAPIClient(list, tlsConf, apiToken, f.env.Getenv("WATCHDOG_PING_TOKEN"))
	if err != nil {
		return nil, nil, nil, f.usageError("%s: %v", from, err)
	}
	if f.timeout <= 0 {
		return nil, nil, nil, f.usageError("-timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	return ctx, cancel, c, nil
}
