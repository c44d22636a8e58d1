package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"runtime"

	"github.com/watchdog-ha/watchdog/internal/buildinfo"
)

// runVersion prints the build of this binary: it asks no node (each node
// reports its own in GET /v1/cluster and watchdog_build_info).
func runVersion(_ context.Context, args []string, env Env) error {
	stdout, stderr := env.Stdout, env.Stderr
	f := flag.NewFlagSet("watchdog version", flag.ContinueOnError)
	f.SetOutput(stderr)
	f.Usage = func() {
		fmt.Fprint(stderr, `Usage: watchdog version [-json]

Prints the version of this binary: the module version, the VCS revision it
was built from (and whether the tree was modified), the Go version, the
platform. Each node reports its own in GET /v1/cluster ("version") and in the
watchdog_build_info metric.
`)
	}
	asJSON := f.Bool("json", false, "print it as JSON")
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if f.NArg() > 0 {
		fmt.Fprintf(stderr, "watchdog version: unexpected argument %q\n", f.Arg(0))
		return ErrUsage
	}
	b := buildinfo.Read()
	if *asJSON {
		return json.NewEncoder(stdout).Encode(b)
	}
	_, err := fmt.Fprintf(stdout, "watchdog %s %s %s/%s\n", b, b.GoVersion, runtime.GOOS, runtime.GOARCH)
	return err
}
