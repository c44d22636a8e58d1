package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/watchdog-ha/watchdog/client"
)

// deleteWorkers is how many deletes a bulk delete has in flight: each is a
// commit of its own, and a few at once keep the leader's batches full
// without crowding out the heartbeats.
const deleteWorkers = 8

// runDelete forgets one service, or every service whose id has a prefix or
// that has a tag.
func runDelete(ctx context.Context, args []string, env Env) error {
	f := newCLIFlags(env, "delete", "ID | -prefix P | -tag T", `
Deletes service ID: the cluster forgets it, its history and any action
still owed for it (a heartbeat afterwards brings it back, on the defaults).
With -prefix or -tag (both: services that match both), deletes every
service that matches, after listing them and asking for confirmation on a
terminal; -yes deletes without asking (required when stdin is not a
terminal). A service the config file defines cannot be deleted: it is
skipped and named. -timeout bounds each request.`)
	prefix := f.String("prefix", "", "delete every service whose id starts with `P`")
	tag := f.String("tag", "", "delete every service tagged `T`")
	yes := f.Bool("yes", false, "delete what -prefix or -tag match without asking")
	pos, err := f.parseAny(args)
	if err != nil {
		return err
	}
	bulk := false
	f.Visit(func(fl *flag.Flag) { bulk = bulk || fl.Name == "prefix" || fl.Name == "tag" })
	switch {
	case bulk && len(pos) > 0:
		return f.usageError("give an ID or -prefix/-tag, not both")
	case !bulk && len(pos) != 1:
		return f.usageError("want one service ID, or -prefix P or -tag T")
	case bulk && *prefix == "" && *tag == "":
		return f.usageError("-prefix and -tag must not be empty (that would be every service)")
	}
	if !bulk {
		return deleteOne(ctx, f, pos[0])
	}
	return deleteMatching(ctx, f, matcher{prefix: *prefix, tag: *tag}, *yes)
}

func deleteOne(ctx context.Context, f *cliFlags, arg string) error {
	id, err := f.serviceID(arg)
	if err != nil {
		return err
	}
	ctx, cancel, c, err := f.client(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if err := c.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	fmt.Fprintf(f.env.Stdout, "%s: deleted\n", id)
	return nil
}

// matcher selects the services of a bulk delete.
type matcher struct{ prefix, tag string }

func (m matcher) String() string {
	var s []string
	if m.prefix != "" {
		s = append(s, fmt.Sprintf("-prefix %q", m.prefix))
	}
	if m.tag != "" {
		s = append(s, fmt.Sprintf("-tag %q", m.tag))
	}
	return strings.Join(s, " ")
}

func (m matcher) match(s client.Service) bool {
	return strings.HasPrefix(s.ID, m.prefix) && (m.tag == "" || slices.Contains(s.Tags, m.tag))
}

func deleteMatching(ctx context.Context, f *cliFlags, m matcher, yes bool) error {
	listCtx, cancel, c, err := f.client(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	_, svcs, err := c.Services(listCtx)
	if err != nil {
		return fmt.Errorf("delete: list the services: %w", err)
	}
	var ids, config []string
	for _, s := range svcs {
		switch {
		case !m.match(s):
		case s.Source == "config":
			config = append(config, s.ID)
		default:
			ids = append(ids, s.ID)
		}
	}
	if len(config) > 0 {
		fmt.Fprintf(f.env.Stderr, "watchdog delete: skipping %d defined in the config file (change it there): %s\n", len(config), abbreviate(config))
	}
	if len(ids) == 0 {
		fmt.Fprintf(f.env.Stdout, "no service to delete matches %s\n", m)
		return nil
	}
	if !yes {
		if err := confirm(f, fmt.Sprintf("delete %d services matching %s (%s)?", len(ids), m, abbreviate(ids))); err != nil {
			return err
		}
	}
	gone, failed := deleteAll(ctx, f, c, ids)
	fmt.Fprintf(f.env.Stdout, "deleted %d of %d services matching %s", len(ids)-len(failed)-gone, len(ids), m)
	if gone > 0 {
		// The list came from one node's replica, which may lag a little.
		fmt.Fprintf(f.env.Stdout, " (%d were gone already)", gone)
	}
	fmt.Fprintln(f.env.Stdout)
	if len(failed) > 0 {
		return fmt.Errorf("delete: %d failed: %w", len(failed), errors.Join(failed...))
	}
	return nil
}

// deleteAll deletes ids, a few at a time, each bounded by -timeout, and
// returns how many were gone already (a 404: what was asked) and the
// failures.
func deleteAll(ctx context.Context, f *cliFlags, c *apiClient, ids []string) (gone int, failed []error) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	next := make(chan string)
	for range min(deleteWorkers, len(ids)) {
		wg.Go(func() {
			for id := range next {
				err := deleteBounded(ctx, f, c, id)
				var apiErr *client.APIError
				mu.Lock()
				switch {
				case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
					gone++
				case err != nil:
					failed = append(failed, fmt.Errorf("%s: %w", id, err))
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			mu.Lock()
			failed = append(failed, fmt.Errorf("%s: %w", id, ctx.Err()))
			mu.Unlock()
			continue
		}
		next <- id
	}
	close(next)
	wg.Wait()
	return gone, failed
}

func deleteBounded(ctx context.Context, f *cliFlags, c *apiClient, id string) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return c.Delete(ctx, id)
}

// confirm asks question on the terminal and returns nil for a yes; without
// a terminal to ask on, the answer is no, and -yes is the way.
func confirm(f *cliFlags, question string) error {
	if f.env.Stdin == nil || !f.env.Interactive {
		fmt.Fprintf(f.Output(), "watchdog %s: %s\nwatchdog %s: stdin is not a terminal to confirm on: give -yes\n", f.name, question, f.name)
		return fmt.Errorf("%w: not confirmed", ErrUsage)
	}
	fmt.Fprintf(f.env.Stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(f.env.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed: nothing deleted")
}

// abbreviate lists a few ids and how many more.
func abbreviate(ids []string) string {
	const shown = 5
	if len(ids) <= shown {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:shown], ", "), len(ids)-shown)
}
