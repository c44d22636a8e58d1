package httpapi

import (
	"math"
	"time"
)

// Uptime at a glance: every service view carries its status timeline, the
// last 24 hours in 48 half-hours (the strip Uptime Kuma and healthchecks
// show), and one service's view its uptime over 24 hours, 7 days and 30
// days, all read from the replicated history (fsm/uptime.go).

// The timeline's shape: timelineBuckets of timelineBucket, the last one
// holding now, aligned to UTC half-hours so that a strip changes only when
// a half-hour turns or the service's status does.
const (
	timelineBuckets = 48
	timelineBucket  = 30 * time.Minute
)

// uptimeView is a service's uptime, 0 to 1 rounded to 4 places; null for a
// period in which it was neither up nor down (paused, or before its
// history).
type uptimeView struct {
	Day   *float64 `json:"24h"`
	Week  *float64 `json:"7d"`
	Month *float64 `json:"30d"`
}

// glance is what a service view shows at a glance.
type glance interface {
	Uptime(id string, now time.Time, periods ...time.Duration) ([]float64, bool)
	Timeline(id string, now time.Time, n int, size time.Duration) (string, time.Time, bool)
}

// withTimeline adds the timeline to v.
func withTimeline(g glance, v *serviceView, now time.Time) {
	if strip, _, ok := g.Timeline(v.ID, now, timelineBuckets, timelineBucket); ok {
		v.Timeline = strip
	}
}

// withUptime adds the uptime to v.
func withUptime(g glance, v *serviceView, now time.Time) {
	shares, ok := g.Uptime(v.ID, now, 24*time.Hour, 7*24*time.Hour, 30*24*time.Hour)
	if !ok {
		return
	}
	round := func(x float64) *float64 {
		if x < 0 {
			return nil
		}
		r := math.Round(x*1e4) / 1e4
		return &r
	}
	v.Uptime = &uptimeView{Day: round(shares[0]), Week: round(shares[1]), Month: round(shares[2])}
}
