package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	// Zone data for the tz of scheduled services, in the binary: the image
	// is FROM scratch, with no /usr/share/zoneinfo to load it from.
	_ "time/tzdata"

	"github.com/watchdog-ha/watchdog/cli"
	"github.com/watchdog-ha/watchdog/config"
	"github.com/watchdog-ha/watchdog/internal/procs"
	"github.com/watchdog-ha/watchdog/internal/sdnotify"
	"github.com/watchdog-ha/watchdog/loadgen"
)

func main() { runMain() }

// runMain is main; tunes adjust an agent's cluster configuration, and only
// tests that run this binary as a node pass any.
func runMain(tunes ...tune) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr, tunes...)
	if code := cli.ExitCode(err); code != cli.ExitOK {
		// A usage error has been explained, with the usage, already.
		if !errors.Is(err, cli.ErrUsage) {
			fmt.Fprintln(os.Stderr, "watchdog:", err)
		}
		os.Exit(code)
	}
}

const usage = `usage: watchdog <command> [flags]

commands:
  agent    run a node of the watchdog cluster (watchdog agent -h for its flags)
  ping     send one heartbeat and wait for its commit: watchdog ping ID
  run      run a command under watch: watchdog run -id ID -- COMMAND ARGS...
  status   the cluster's health: leader, and each node alive, voter, ready
  services every service: status, last seen, timeout, next deadline
  service  one service with its recent incidents: watchdog service ID
  pause    stop watching a service (maintenance): watchdog pause ID [-for 2h | -until T], or -tag T
  resume   watch a paused service again: watchdog resume ID, or -tag T
  delete   forget a service: watchdog delete ID, or -prefix P / -tag T for many
  members  the cluster's nodes and their state; members remove NODE removes a dead one
  leave    retire the node at -addr from the cluster for good, then stop it
  snapshot back up or restore the replicated state: snapshot save FILE, snapshot restore FILE
  config   the cluster's committed configuration: config apply FILE, config show
  bench    load-test a cluster with heartbeats: throughput, errors, latency (watchdog bench -h)
  keygen   print a new random gossip encryption key (for gossip_key)
  version  print the version of this binary (each node's is in members and /v1/cluster)

The client commands (all but agent and bench) talk to the nodes in -addr or
$WATCHDOG_ADDR (host:port or URLs, comma-separated; default 127.0.0.1:8080),
trying each in turn. Each takes -h. Exit status: 0 success, 1 failed or
unhealthy, 2 usage error, 3 cluster unavailable.
`

func run(ctx context.Context, args []string, stderr io.Writer, tunes ...tune) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return cli.ErrUsage
	}
	switch args[0] {
	case "agent":
		return runAgent(ctx, args[1:], stderr, tunes...)
	case "bench":
		return loadgen.Run(ctx, args[1:], os.Stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	if cmd := cli.Lookup(args[0]); cmd != nil {
		return cmd(ctx, args[1:], cli.OSEnv(stderr))
	}
	fmt.Fprintf(stderr, "watchdog: unknown command %q\n%s", args[0], usage)
	return cli.ErrUsage
}

func runAgent(ctx context.Context, args []string, stderr io.Writer, tunes ...tune) error {
	cfg, err := config.ParseAgentFlags(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	a, err := StartAgent(cfg, log, append(testClock(), tunes...)...)
	if err != nil {
		return err
	}
	stopNotify := sdnotify.Start(a.Addr, a.healthTLS(), os.Getenv, log) // systemd Type=notify
	_ = procs.Adapt(ctx, os.Getenv, log)                                // one core while that is enough
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-a.Node.Left():
		log.Info("left the cluster: shutting down")
	}
	stopNotify() // STOPPING=1
	return a.Shutdown(context.Background())
}
