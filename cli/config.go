package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/watchdog-ha/watchdog/client"
	"github.com/watchdog-ha/watchdog/config"
	"github.com/watchdog-ha/watchdog/fsm"
)

// runConfig is "watchdog config apply FILE" and "watchdog config show".
func runConfig(ctx context.Context, args []string, env Env) error {
	if len(args) > 0 {
		switch args[0] {
		case "apply":
			return runConfigApply(ctx, args[1:], env)
		case "show":
			return runConfigShow(ctx, args[1:], env)
		}
	}
	fmt.Fprint(env.Stderr, `Usage: watchdog config apply [flags] FILE
       watchdog config show [flags]

The committed configuration (defaults, services, history_per_service) is the
cluster's: a node restarted with another config file, or none, does not
change it. "config apply" makes FILE's the cluster's configuration; "config
show" prints the committed one's generation and hash, and this node's file's.
Each takes -h.
`)
	return ErrUsage
}

func runConfigApply(ctx context.Context, args []string, env Env) error {
	f := newCLIFlags(env, "config apply", "FILE", `
Makes FILE's configuration (defaults, services, history_per_service) the
cluster's. FILE is checked here first, then sent to a node, which checks it
again and commits it through the leader: a file with errors changes nothing
and its errors are printed as file:line: key: problem. Actions stay in each
node's own config file: the committed configuration only names them, so an
apply that newly names an action some node's file lacks is refused unless
-force.
Applying the committed configuration again changes nothing.
Needs the API token (WATCHDOG_TOKEN) when the cluster has one.`)
	force := f.Bool("force", false, "apply even if some node's file lacks an action the configuration newly names")
	generation := f.Int64("generation", -1, "apply only if the committed generation is still `N` (see config show)")
	ctx, cancel, c, pos, err := f.connect(ctx, args, 1)
	if err != nil {
		return err
	}
	defer cancel()
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return fmt.Errorf("config apply: %w", err)
	}
	if _, err := config.ParseConfig(data, pos[0]); err != nil {
		return fmt.Errorf("config apply: %s: not applied:\n%w", pos[0], err)
	}
	q := url.Values{"name": {pos[0]}}
	if *force {
		q.Set("force", "true")
	}
	if *generation >= 0 {
		q.Set("generation", strconv.FormatInt(*generation, 10))
	}
	body, _, err := c.doBody(ctx, http.MethodPut, "/v1/config?"+q.Encode(), data)
	if err != nil {
		var refusal *client.APIError
		if errors.As(err, &refusal) {
			return fmt.Errorf("config apply: not applied:\n%s", refusal.Message)
		}
		return fmt.Errorf("config apply: %w", err)
	}
	return printApplied(env, pos[0], body)
}

// printApplied prints the answer to an apply of file: what it committed,
// and the nodes whose files lack actions it names.
func printApplied(env Env, file string, body []byte) error {
	var v struct {
		Changed   bool
		Services  int
		Committed fsm.ConfigInfo
		Missing   map[string][]string `json:"missing_actions"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("config apply: decode answer: %w", err)
	}
	if !v.Changed {
		fmt.Fprintf(env.Stdout, "unchanged: %s is the committed configuration (generation %d, hash %s)\n",
			file, v.Committed.Generation, v.Committed.Hash)
		return nil
	}
	fmt.Fprintf(env.Stdout, "applied %s: generation %d, hash %s, %d services\n", file,
		v.Committed.Generation, v.Committed.Hash, v.Services)
	for _, id := range slices.Sorted(maps.Keys(v.Missing)) {
		fmt.Fprintf(env.Stderr, "warning: %s's config file lacks %s: it is not ready until it has them\n",
			id, strings.Join(v.Missing[id], ", "))
	}
	return nil
}

func runConfigShow(ctx context.Context, args []string, env Env) error {
	f := newCLIFlags(env, "config show", "", `
Prints the committed configuration's generation, hash and the actions it
names, and how the config file of the node that answers compares with it.
"watchdog members" shows every node's.`)
	asJSON := f.Bool("json", false, "print the API's JSON as it came")
	ctx, cancel, c, _, err := f.connect(ctx, args, 0)
	if err != nil {
		return err
	}
	defer cancel()
	var v struct {
		Node      string
		Committed fsm.ConfigInfo
		File      *struct {
			File    bool
			Hash    string
			Drift   bool
			Missing []string `json:"missing_actions"`
		}
	}
	raw, err := c.getJSON(ctx, "/v1/config", &v)
	if err != nil {
		return fmt.Errorf("config show: %w", err)
	}
	if *asJSON {
		_, err = env.Stdout.Write(raw)
		return err
	}
	if v.Committed.Generation == 0 {
		fmt.Fprintln(env.Stdout, "committed: none yet (the first leader with a config file commits its own)")
	} else {
		fmt.Fprintf(env.Stdout, "committed: generation %d, hash %s, actions %s\n", v.Committed.Generation,
			v.Committed.Hash, strings.Join(v.Committed.Actions, ","))
	}
	if v.File != nil {
		fmt.Fprintf(env.Stdout, "%s's file: %s\n", v.Node, configCell(v.File.File, v.File.Hash, v.File.Drift, v.File.Missing))
	}
	return nil
}

// configCell says how a node's config file compares with the committed
// configuration, for a table cell: its hash, and what is wrong.
func configCell(file bool, hash string, drift bool, missing []string) string {
	s := "none"
	if file {
		s = hash
	}
	switch {
	case len(missing) > 0:
		s += " DRIFT, lacks " + strings.Join(missing, ",")
	case drift:
		s += " DRIFT"
	}
	return s
}
