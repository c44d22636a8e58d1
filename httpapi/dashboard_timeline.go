package httpapi

import (
	"fmt"
	"strings"
	"time"

	"github.com/watchdog-ha/watchdog/fsm"
)

// The dashboard's status timeline: each service row shows its last 24
// hours as 48 half-hour marks (the strip of ups and downs Uptime Kuma and
// healthchecks show), rendered by the server so that it reads without
// JavaScript, kept live by the script from the stream's "timeline".

// timelineCell is one half-hour of a row's timeline.
type timelineCell struct {
	Class string // tl-u, tl-d, tl-p or tl-n (unknown)
	Title string // "10:00–10:30 UTC: up"
}

// timelineWords names the timeline's letters for people.
func timelineWord(mark byte) (class, word string) {
	switch mark {
	case fsm.TimelineUp:
		return "tl-u", "up"
	case fsm.TimelineDown:
		return "tl-d", "down"
	case fsm.TimelinePaused:
		return "tl-p", "paused"
	}
	return "tl-n", "no data"
}

// rowWithTimeline is rowOf with the service's tags and timeline.
func (d *dashboard) rowWithTimeline(svc fsm.Service, now time.Time) pageRow {
	r := rowOf(svc, now)
	r.Tags = svc.Def.Tags
	strip, start, ok := d.state.Timeline(svc.ID, now, timelineBuckets, timelineBucket)
	if !ok {
		return r
	}
	counts := map[string]int{}
	for i := range len(strip) {
		class, word := timelineWord(strip[i])
		from := start.Add(time.Duration(i) * timelineBucket).UTC()
		r.Timeline = append(r.Timeline, timelineCell{Class: class,
			Title: fmt.Sprintf("%s–%s UTC: %s", from.Format("15:04"), from.Add(timelineBucket).Format("15:04"), word)})
		counts[word]++
	}
	r.TimelineLabel = timelineSummary(counts)
	return r
}

// timelineSummary says what a strip shows, for screen readers and the
// strip's tooltip: "last 24 h: 47 half-hours up, 1 down".
func timelineSummary(counts map[string]int) string {
	var parts []string
	for _, word := range []string{"up", "down", "paused", "no data"} {
		if n := counts[word]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, word))
		}
	}
	return "last 24 h in half-hours: " + strings.Join(parts, ", ")
}
