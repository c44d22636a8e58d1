package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/watchdog-ha/watchdog/client"
	"github.com/watchdog-ha/watchdog/cluster"
)

// leaveTimeout is the default -timeout of leave: a leadership transfer, a
// removal and a gossip leave, with room for an election on the way.
const leaveTimeout = 30 * time.Second

// runMembers lists the nodes as one node sees them, or, as "members remove
// NODE", removes a node that is gone for good.
func runMembers(ctx context.Context, args []string, env Env) error {
	if len(args) > 0 && args[0] == "remove" {
		return runMembersRemove(ctx, args[1:], env)
	}
	f := newCLIFlags(env, "members", "", `
Lists the cluster's nodes as the first node that answers sees them: each
node's suffrage (voter, nonvoter; none if only gossip knows it), its Raft
state, its gossip state, the last entry it applied and how far that is
behind the leader's commit index (LAG), how long ago it heard from the
leader (CONTACT), its protocol version, and the hash of its config file
(CONFIG; none without one) with DRIFT when it differs from the committed
configuration, whose generation and hash the last line shows ("lacks X":
its file lacks action X, which the committed configuration names; such a
node is not ready and does not lead while another voter can). Raft state,
applied index and contact are as the node answered its last status poll,
at most a second ago; "unreachable" when it did not answer.

"watchdog members remove NODE" removes a dead node (see its -h).`)
	asJSON := f.Bool("json", false, "print the API's JSON as it came")
	ctx, cancel, c, _, err := f.connect(ctx, args, 0)
	if err != nil {
		return err
	}
	defer cancel()
	raw, cl, err := c.Cluster(ctx)
	if err != nil {
		return fmt.Errorf("members: %w", err)
	}
	if *asJSON {
		_, err = env.Stdout.Write(raw)
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tHTTP\tRAFT\tSUFFRAGE\tSTATE\tGOSSIP\tAPPLIED\tLAG\tCONTACT\tPROTO\tCONFIG")
	for _, n := range cl.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, orDash(n.HTTPAddr), orDash(n.RaftAddr),
			n.Suffrage, memberState(n), n.Gossip, appliedOf(n), optInt(n.Lag, ""), optInt(n.LastContactMS, "ms"), optProto(n.Protocol),
			memberConfig(n))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cl.Config.Generation == 0 {
		_, err = fmt.Fprintln(env.Stdout, "committed configuration: none yet")
	} else {
		_, err = fmt.Fprintf(env.Stdout, "committed configuration: generation %d, hash %s\n", cl.Config.Generation, cl.Config.Hash)
	}
	return err
}

func memberConfig(n cluster.Member) string {
	if n.Config == nil {
		return "-"
	}
	return configCell(n.Config.File, n.Config.Hash, n.Config.Drift, n.Config.Missing)
}

func memberState(n cluster.Member) string {
	if n.StatusError != "" {
		return "unreachable"
	}
	return n.RaftState
}

func appliedOf(n cluster.Member) string {
	if n.StatusError != "" {
		return "-"
	}
	return strconv.FormatUint(n.AppliedIndex, 10)
}

func optInt(v *int64, unit string) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatInt(*v, 10) + unit
}

func optProto(p int) string {
	if p == 0 {
		return "-"
	}
	return strconv.Itoa(p)
}

// runMembersRemove removes a node that is gone for good, through any node.
func runMembersRemove(ctx context.Context, args []string, env Env) error {
	f := newCLIFlags(env, "members remove", "NODE", `
Removes NODE from the Raft configuration, for a node that is gone for good
(its machine is lost). Any node takes the request and forwards it to the
leader. A node that is still alive is refused: run "watchdog leave" on it
instead. So is the leader, and a voter without which the voters left would
not have a quorum that answers, unless -force is given; the last voter is
never removed. A refusal says why. Removing a node that is no longer in the
configuration succeeds and changes nothing.`)
	force := f.Bool("force", false, "remove the voter even if the voters left would lack a quorum that answers")
	pos, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	if !client.ValidID(pos[0]) {
		return f.usageError("invalid node id %q", pos[0])
	}
	ctx, cancel, c, err := f.client(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	path := "/v1/cluster/members/" + url.PathEscape(pos[0])
	if *force {
		path += "?force=true"
	}
	body, _, err := c.do(ctx, http.MethodDelete, path)
	if err != nil {
		return fmt.Errorf("members remove %s: %w", pos[0], err)
	}
	var v struct{ Removed bool }
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("members remove: decode answer: %w", err)
	}
	if v.Removed {
		fmt.Fprintf(env.Stdout, "%s: removed\n", pos[0])
	} else {
		fmt.Fprintf(env.Stdout, "%s: not in the Raft configuration (nothing to do)\n", pos[0])
	}
	return nil
}

// runLeave retires the one node given in -addr.
func runLeave(ctx context.Context, args []string, env Env) error {
	f := newCLIFlags(env, "leave", "", `
Retires the node at -addr from the cluster for good, as before
decommissioning its machine: if it is the leader it hands leadership over
first, then it is removed from the Raft configuration, then it leaves gossip
and stops. Give exactly one address: the node to retire. Refused (with the
reason) if the voters left would lack a quorum that answers, unless -force,
and always for the last voter. To stop a node for a restart or an upgrade,
send it SIGTERM instead: it keeps its place.`)
	force := f.Bool("force", false, "leave even if the voters left would lack a quorum that answers")
	f.timeout = leaveTimeout
	f.Lookup("timeout").DefValue = leaveTimeout.String()
	ctx, cancel, c, _, err := f.connect(ctx, args, 0)
	if err != nil {
		return err
	}
	defer cancel()
	if n := len(c.Nodes()); n != 1 {
		return f.usageError("leave retires the node it is sent to: give exactly one address, got %d", n)
	}
	path := "/v1/cluster/leave"
	if *force {
		path += "?force=true"
	}
	body, _, err := c.do(ctx, http.MethodPost, path)
	if err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	var v struct{ Node string }
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("leave: decode answer: %w", err)
	}
	fmt.Fprintf(env.Stdout, "%s: left the cluster\n", v.Node)
	return nil
}
