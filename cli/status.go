package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/watchdog-ha/watchdog/cluster"
)

// readyTimeout bounds the readiness check of each node.
const readyTimeout = 2 * time.Second

// runStatus prints the cluster's health: its leader and every node's
// liveness, vote and readiness.
func runStatus(ctx context.Context, args []string, env Env) error {
	f := newCLIFlags(env, "status", "", `
Shows the cluster's health: the leader, and for every node whether it is
alive (gossip), a voter (Raft) and ready (its own /readyz: it knows the
leader, hears from it and is caught up). Exits 1 unless there is a leader
and every node is alive and ready.`)
	ctx, cancel, c, _, err := f.connect(ctx, args, 0)
	if err != nil {
		return err
	}
	defer cancel()
	_, cl, err := c.Cluster(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	ready := readiness(ctx, c, cl.Nodes)
	if err := printStatus(env.Stdout, cl, ready); err != nil {
		return err
	}
	var problems []string
	if cl.Leader == "" {
		problems = append(problems, "no leader")
	}
	for i, n := range cl.Nodes {
		if !n.Alive || ready[i] != nil {
			problems = append(problems, n.ID+" not ready")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errUnhealthy, strings.Join(problems, ", "))
	}
	return nil
}

// readiness asks every node at once: one that hangs costs readyTimeout, not
// one timeout per node.
func readiness(ctx context.Context, c *apiClient, nodes []cluster.Member) []error {
	out := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, readyTimeout)
			defer cancel()
			out[i] = c.Ready(ctx, n.HTTPAddr)
		})
	}
	wg.Wait()
	return out
}

func printStatus(w io.Writer, cl apiCluster, ready []error) error {
	leader := cl.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(w, "leader: %s\n", leader)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tHTTP\tVOTER\tALIVE\tREADY")
	for i, n := range cl.Nodes {
		r := "yes"
		if ready[i] != nil {
			r = "no: " + ready[i].Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.ID, orDash(n.HTTPAddr), yesNo(n.Voter), yesNo(n.Alive), r)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
