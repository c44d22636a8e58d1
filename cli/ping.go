package cli

import (
	"context"
	"fmt"
)

// runPing sends one heartbeat and returns once it is committed.
func runPing(ctx context.Context, args []string, env Env) error {
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
	fmt.Fprintf(env.Stdout, "%s: heartbeat committed (via %s)\n", id, via)
	return nil
}
