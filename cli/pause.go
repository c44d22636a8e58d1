package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/watchdog-ha/watchdog/client"
)

// runPause stops watching a service, or every service with a tag, until
// resumed or for a maintenance window.
func runPause(ctx context.Context, args []string, env Env) error {
	f := newCLIFlags(env, "pause", "ID | -tag T", `
Stops watching service ID, or every service tagged T (-tag): however long
it stays silent, it raises no incident and runs no action. For maintenance.
With -for or -until it is a window: the cluster's leader resumes it by itself
when the window ends, with a full timeout from then, through a failover
too. Without them it stays paused until "watchdog resume".`)
	var w client.Window
	var until string
	f.DurationVar(&w.For, "for", 0, "resume by itself after this `duration` (e.g. 2h)")
	f.StringVar(&until, "until", "", "resume by itself at this `time` (RFC 3339, e.g. 2026-12-24T18:00:00Z)")
	tag := f.String("tag", "", "pause every service with this `tag`, at once")
	return pauseOrResume(ctx, f, args, tag, func(ctx context.Context, c *client.Client, target string, byTag bool) (string, error) {
		if until != "" {
			t, err := time.Parse(time.RFC3339, until)
			if err != nil {
				return "", f.usageError("-until: want an RFC 3339 time such as 2026-12-24T18:00:00Z, got %q", until)
			}
			w.Until = t
		}
		if w.For < 0 {
			return "", f.usageError("-for: must be positive, got %s", w.For)
		}
		if w.For != 0 && until != "" {
			return "", f.usageError("give -for or -until, not both")
		}
		if byTag {
			ch, err := c.PauseTag(ctx, target, w)
			return describeTagChange(ch), err
		}
		s, err := c.Pause(ctx, target, w)
		return describePaused(s), err
	})
}

// runResume watches a paused service, or the paused services with a tag,
// again, with a full timeout from now.
func runResume(ctx context.Context, args []string, env Env) error {
	f := newCLIFlags(env, "resume", "ID | -tag T", `
Watches the paused service ID again, or every paused service tagged T
(-tag). Its timeout starts afresh: the time it spent paused does not count
as silence. A service that was down when it was paused is down again.`)
	tag := f.String("tag", "", "resume every paused service with this `tag`, at once")
	return pauseOrResume(ctx, f, args, tag, func(ctx context.Context, c *client.Client, target string, byTag bool) (string, error) {
		if byTag {
			ch, err := c.ResumeTag(ctx, target)
			return describeTagChange(ch), err
		}
		s, err := c.Resume(ctx, target)
		var refusal *client.APIError
		if errors.As(err, &refusal) && refusal.Status == http.StatusConflict {
			// Not paused: it is watched already, which is what resume is for.
			return refusal.Message, nil
		}
		return string(s.Status), err
	})
}

// pauseOrResume runs one of the two commands on its ID or its -tag.
func pauseOrResume(ctx context.Context, f *cliFlags, args []string, tag *string,
	do func(ctx context.Context, c *client.Client, target string, byTag bool) (string, error)) error {
	pos, err := f.parseAny(args)
	if err != nil {
		return err
	}
	target, byTag := "", *tag != ""
	switch {
	case byTag && len(pos) > 0:
		return f.usageError("give an ID or -tag, not both")
	case byTag && !client.ValidID(*tag):
		return f.usageError("invalid tag %q: want 1-128 of A-Za-z0-9._- (not . or ..)", *tag)
	case byTag:
		target = *tag
	case len(pos) != 1:
		return f.usageError("want 1 argument(s), got %d", len(pos))
	default:
		if target, err = f.serviceID(pos[0]); err != nil {
			return err
		}
	}
	ctx, cancel, c, err := f.client(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	out, err := do(ctx, c.c, target, byTag)
	if errors.Is(err, ErrUsage) || errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		what := target
		if byTag {
			what = "-tag " + target
		}
		return fmt.Errorf("%s %s: %w", f.name, what, cliError{err})
	}
	if byTag {
		fmt.Fprintf(f.env.Stdout, "tag %s: %s\n", target, out)
	} else {
		fmt.Fprintf(f.env.Stdout, "%s: %s\n", target, out)
	}
	return nil
}

func describePaused(s client.Service) string {
	if s.PausedUntil != nil {
		return fmt.Sprintf("%s until %s", s.Status, s.PausedUntil.UTC().Format(time.RFC3339))
	}
	return string(s.Status)
}

func describeTagChange(ch client.TagChange) string {
	verb := "paused"
	if ch.Status != client.StatusPaused {
		verb = "resumed"
	}
	changed := "none"
	if len(ch.Changed) > 0 {
		changed = strings.Join(ch.Changed, ", ")
	}
	out := fmt.Sprintf("%s %s", verb, changed)
	if ch.Until != nil {
		out += " until " + ch.Until.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s (%d unchanged)", out, ch.Unchanged)
}
