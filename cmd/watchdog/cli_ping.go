package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/watchdog-ha/watchdog/client"
)

// runPing sends one heartbeat and returns once it is committed.
func runPing(ctx context.Context, args []string, env cliEnv) error {
	f := newCLIFlags(env, "ping", "ID", `
Sends one heartbeat for service ID and returns once the cluster has committed
it. Nodes are tried in turn: a node that is down or answers 503 (no leader)
is skipped, and rounds over the list repeat until -timeout. Heartbeats are
idempotent, so a retry never does harm.`)
	ctx, cancel, c, id, err := f.connectService(ctx, args)
	if err != nil {
		return err
	}
	defer cancel()
	via, err := c.Heartbeat(ctx, id)
	if err != nil {
		return fmt.Errorf("ping %s: %w", id, err)
	}
	fmt.Fprintf(env.stdout, "%s: heartbeat committed (via %s)\n", id, via)
	return nil
}

// runPause stops watching a service until it is resumed.
func runPause(ctx context.Context, args []string, env cliEnv) error {
	return setPaused(ctx, args, env, true)
}

// runResume watches a paused service again, with a full timeout from now.
func runResume(ctx context.Context, args []string, env cliEnv) error {
	return setPaused(ctx, args, env, false)
}

func setPaused(ctx context.Context, args []string, env cliEnv, paused bool) error {
	name, about := "resume", `
Watches the paused service ID again. Its timeout starts afresh: the time it
spent paused does not count as silence. A service that was down when it was
paused is down again.`
	if paused {
		name, about = "pause", `
Stops watching service ID: however long it stays silent, it raises no
incident and runs no action until "watchdog resume ID". For maintenance.`
	}
	f := newCLIFlags(env, name, "ID", about)
	ctx, cancel, c, id, err := f.connectService(ctx, args)
	if err != nil {
		return err
	}
	defer cancel()
	s, err := c.SetPaused(ctx, id, paused)
	var refusal *client.APIError
	if !paused && errors.As(err, &refusal) && refusal.Status == http.StatusConflict {
		// Not paused: it is watched already, which is what resume is for.
		fmt.Fprintf(env.stdout, "%s: %s\n", id, refusal.Message)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, id, err)
	}
	fmt.Fprintf(env.stdout, "%s: %s\n", s.ID, s.Status)
	return nil
}
