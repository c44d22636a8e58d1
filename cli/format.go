package cli

import (
	"fmt"
	"strings"
	"time"
)

// shortDuration writes a duration as people read one at a glance.
func shortDuration(d time.Duration) string {
	d = d.Abs()
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// ago is "never" or how long before now t was.
func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	return shortDuration(now.Sub(*t)) + " ago"
}

// dueIn is "-", "in 7s" or, past it, "overdue 2s".
func dueIn(t *time.Time, now time.Time) string {
	switch {
	case t == nil:
		return "-"
	case t.Before(now):
		return "overdue " + shortDuration(now.Sub(*t))
	}
	return "in " + shortDuration(t.Sub(now))
}

// stamp is an RFC 3339 time with how long ago it was, or "-".
func stamp(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339) + " (" + ago(t, now) + ")"
}

func joinOrDash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
