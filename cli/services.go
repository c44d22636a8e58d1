package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/watchdog-ha/watchdog/client"
)

// runServices prints every service as a table, or the API's JSON.
func runServices(ctx context.Context, args []string, env Env) error {
	f := newCLIFlags(env, "services", "", `
Lists every service the cluster watches: its status, when it was last heard
from, its timeout and when it is next due. Exits 1 when any service is down.`)
	asJSON := f.Bool("json", false, "print the API's JSON as it came")
	ctx, cancel, c, _, err := f.connect(ctx, args, 0)
	if err != nil {
		return err
	}
	defer cancel()
	raw, svcs, err := c.Services(ctx)
	if err != nil {
		return fmt.Errorf("services: %w", err)
	}
	if *asJSON {
		_, err = env.Stdout.Write(raw)
	} else {
		err = printServices(env.Stdout, svcs, env.Now())
	}
	if err != nil {
		return err
	}
	var down []string
	for _, s := range svcs {
		if s.Status == client.StatusDown {
			down = append(down, s.ID)
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("%w: %d down: %s", errUnhealthy, len(down), strings.Join(down, ", "))
	}
	return nil
}

func printServices(w io.Writer, svcs []client.Service, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tLAST SEEN\tTIMEOUT\tNEXT DEADLINE")
	for _, s := range svcs {
		due := dueIn(s.NextDeadline, now)
		if s.WaitsFor != "" {
			due = "waits for " + s.WaitsFor
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Status, ago(s.LastSeen, now), expected(s), due)
	}
	return tw.Flush()
}

// expected says when a service is expected: its timeout, or its schedule
// and zone.
func expected(s client.Service) string {
	if s.Schedule != "" {
		return fmt.Sprintf("%s (%s, grace %s)", s.Schedule, s.TZ, s.Grace)
	}
	return s.Timeout.String()
}

// runService prints one service and its recent incidents.
func runService(ctx context.Context, args []string, env Env) error {
	f := newCLIFlags(env, "service", "ID", `
Shows service ID: its status, timing and actions, and its recent incidents
with every action run and its outcome. Exits 1 when the service is down or
unknown.`)
	asJSON := f.Bool("json", false, "print the API's JSON as it came")
	ctx, cancel, c, id, err := f.connectService(ctx, args)
	if err != nil {
		return err
	}
	defer cancel()
	raw, s, err := c.Service(ctx, id)
	if err != nil {
		return fmt.Errorf("service %s: %w", id, err)
	}
	if *asJSON {
		_, err = env.Stdout.Write(raw)
	} else {
		err = printService(env.Stdout, s, env.Now())
		if err == nil {
			err = printRecentEvents(ctx, env.Stdout, c, id, env.Now())
		}
	}
	if err != nil {
		return err
	}
	if s.Status == client.StatusDown {
		return fmt.Errorf("%w: service %s is down", errUnhealthy, id)
	}
	return nil
}

// recentEvents is how many of a service's events `watchdog service` shows.
const recentEvents = 10

// apiEvent is one entry of GET /v1/services/{id}/events.
type apiEvent struct {
	Time     *time.Time `json:"time"`
	Event    string     `json:"event"`
	Incident string     `json:"incident"`
	Action   string     `json:"action"`
	For      string     `json:"for"`
	State    string     `json:"state"`
	Attempts int        `json:"attempts"`
	Error    string     `json:"error"`
	Note     string     `json:"note"`
	// SuppressedBy, on a suppressed event: the dependency it waits for.
	SuppressedBy string `json:"suppressed_by"`
}

// printRecentEvents shows the service's last events, oldest first.
func printRecentEvents(ctx context.Context, w io.Writer, c *apiClient, id string, now time.Time) error {
	var page struct {
		Events []apiEvent `json:"events"`
	}
	if _, err := c.getJSON(ctx, "/v1/services/"+id+"/events", &page); err != nil {
		return fmt.Errorf("events of %s: %w", id, err)
	}
	evs := page.Events[max(len(page.Events)-recentEvents, 0):]
	fmt.Fprintf(w, "recent events (%d of %d):\n", len(evs), len(page.Events))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, e := range evs {
		detail := strings.TrimSpace(strings.Join([]string{e.Incident, e.Action, e.For, e.State, e.Error, firstLine(e.Note), e.SuppressedBy}, " "))
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", stamp(e.Time, now), e.Event, strings.Join(strings.Fields(detail), " "))
	}
	return tw.Flush()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func printService(w io.Writer, s client.Service, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\n", s.ID)
	fmt.Fprintf(tw, "status:\t%s\n", s.Status)
	fmt.Fprintf(tw, "last seen:\t%s\n", stamp(s.LastSeen, now))
	if s.Schedule != "" {
		fmt.Fprintf(tw, "schedule:\t%s\n", expected(s))
	} else {
		fmt.Fprintf(tw, "timeout:\t%s\n", s.Timeout)
	}
	if len(s.DependsOn) > 0 {
		fmt.Fprintf(tw, "depends on:\t%s\n", strings.Join(s.DependsOn, ", "))
	}
	if s.WaitsFor != "" {
		fmt.Fprintf(tw, "waits for:\t%s (its actions are suppressed until it is up)\n", s.WaitsFor)
	}
	fmt.Fprintf(tw, "next deadline:\t%s\n", dueIn(s.NextDeadline, now))
	fmt.Fprintf(tw, "actions:\t%s\n", joinOrDash(s.Actions))
	fmt.Fprintf(tw, "on recovered:\t%s\n", joinOrDash(s.OnRecovered))
	fmt.Fprintf(tw, "incidents:\t%d\n", len(s.Incidents))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, inc := range s.Incidents { // most recent first, as the API sends them
		if err := printIncident(w, inc, now); err != nil {
			return err
		}
	}
	return nil
}

func printIncident(w io.Writer, inc client.Incident, now time.Time) error {
	end := "still open"
	if inc.Resolved != nil {
		end = "resolved " + stamp(inc.Resolved, now)
	}
	fmt.Fprintf(w, "\nincident %s: opened %s, %s\n", inc.ID, stamp(inc.Opened, now), end)
	if inc.SuppressedBy != "" {
		released := "its actions wait"
		if inc.Released != nil {
			released = "its actions ran from " + stamp(inc.Released, now)
		}
		fmt.Fprintf(w, "  suppressed: %s was down; %s\n", inc.SuppressedBy, released)
	}
	if len(inc.Actions) == 0 {
		_, err := fmt.Fprintln(w, "  no actions")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  EVENT\tACTION\tSTATE\tATTEMPTS\tFINISHED\tERROR")
	for _, a := range inc.Actions {
		errText := a.Error
		if errText == "" {
			errText = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\n", a.Event, a.Action, a.State, a.Attempts, stamp(a.Finished, now), errText)
	}
	return tw.Flush()
}
