package fsm

import (
	"math"
	"testing"
	"time"
)

const hour = int64(time.Hour)

// Uptime counts up against down from the history; paused time is left
// out, and so is time before a history that dropped events.
func TestUptimeFromTheHistory(t *testing.T) {
	a := newApplier(t)
	a.apply(Heartbeat{At: 1 * hour, IDs: []string{"db", "steady"}})
	// down from 10h to 11h, paused from 12h to 14h, down again at 20h.
	a.apply(Incidents{At: 10 * hour, Opens: []Open{{Service: "db", LastSeen: 1 * hour}}})
	a.apply(Heartbeat{At: 11 * hour, IDs: []string{"db"}})
	a.apply(Pause{At: 12 * hour, Service: "db", Paused: true})
	a.apply(Pause{At: 14 * hour, Service: "db"})
	db := a.service("db")
	a.apply(Incidents{At: 20 * hour, Opens: []Open{{Service: "db", LastSeen: db.LastSeen}}})

	now := time.Unix(0, 24*hour)
	shares, ok := a.f.Uptime("db", now, 24*time.Hour, 12*time.Hour, time.Hour)
	if !ok {
		t.Fatal("db unknown")
	}
	// 24h: up 0-10, 11-12, 14-20 = 17h; down 10-11, 20-24 = 5h.
	want := []float64{17.0 / 22, 6.0 / 10, 0}
	for i := range want {
		if math.Abs(shares[i]-want[i]) > 1e-9 {
			t.Fatalf("uptime %v, want %v", shares, want)
		}
	}
	if s, _ := a.f.Uptime("steady", now, 24*time.Hour); s[0] != 1 {
		t.Fatalf("steady: %v, want 1", s)
	}
	if _, ok := a.f.Uptime("nobody", now, time.Hour); ok {
		t.Fatal("an unknown service has an uptime")
	}
	// Paused the whole period: no uptime to tell.
	a.apply(Pause{At: 25 * hour, Service: "steady", Paused: true})
	if s, _ := a.f.Uptime("steady", time.Unix(0, 30*hour), time.Hour); s[0] != -1 {
		t.Fatalf("paused all along: %v, want -1", s)
	}

	strip, start, _ := a.f.Timeline("db", now.Add(-time.Minute), 12, 2*time.Hour)
	// Buckets of 2h from 0h: 0-8 up, 10 down, 12 paused, 14-18 up, 20-22 down.
	if strip != "uuuuudpuuudd" || start != time.Unix(0, 0) {
		t.Fatalf("timeline %q from %s", strip, start)
	}
}

// Once history_per_service has dropped events, the time before the oldest
// one kept is unknown: neither up nor down.
func TestUptimeOfATruncatedHistory(t *testing.T) {
	a := newApplier(t)
	a.apply(Configure{At: 0, Defaults: *DefaultDefinition(), HistoryPerService: 2})
	a.apply(Heartbeat{At: 1 * hour, IDs: []string{"db"}})
	a.apply(Incidents{At: 2 * hour, Opens: []Open{{Service: "db", LastSeen: 1 * hour}}}) // dropped below
	a.apply(Heartbeat{At: 3 * hour, IDs: []string{"db"}})
	db := a.service("db")
	a.apply(Incidents{At: 5 * hour, Opens: []Open{{Service: "db", LastSeen: db.LastSeen}}})
	a.apply(Heartbeat{At: 6 * hour, IDs: []string{"db"}})
	// Kept: down at 5h, recovered at 6h.
	shares, _ := a.f.Uptime("db", time.Unix(0, 8*hour), 8*time.Hour)
	if want := 2.0 / 3; math.Abs(shares[0]-want) > 1e-9 {
		t.Fatalf("uptime %v, want %v over the 3h known", shares, want)
	}
	strip, _, _ := a.f.Timeline("db", time.Unix(0, 8*hour-1), 8, time.Hour)
	if strip != "-----duu" {
		t.Fatalf("timeline %q", strip)
	}
}
